package token

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Verifier checks a token and returns its claims: a *Key verifies with one
// key, a *KeyDir with the key the token's "kid" names.
type Verifier interface {
	Verify(token string) (Claims, error)
}

var (
	_ Verifier = (*Key)(nil)
	_ Verifier = (*KeyDir)(nil)
)

// KeyDir is a directory of key files named "{kid}.jwk", so keys can be
// rotated: every token names its key with the "kid" header. Files are read
// at each lookup, so keys can be added and removed while a relay runs.
type KeyDir struct {
	dir string
}

// LoadKeyDir returns the key directory dir, which must exist.
func LoadKeyDir(dir string) (*KeyDir, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	return &KeyDir{dir: dir}, nil
}

// Key loads the key with id kid ("{kid}.jwk"). A kid that is not a valid key
// id, or has no file, is ErrKeyNotFound.
func (d *KeyDir) Key(kid string) (*Key, error) {
	if err := checkKeyID(kid); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKeyNotFound, err)
	}
	k, err := LoadKey(filepath.Join(d.dir, kid+".jwk"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: no %s.jwk in %s", ErrKeyNotFound, kid, d.dir)
	}
	return k, err
}

// Verify checks the token with the key its "kid" header names (see
// Key.Verify). A token without a kid is ErrNoKeyID.
func (d *KeyDir) Verify(token string) (Claims, error) {
	h, err := parseHeader(token)
	if err != nil {
		return Claims{}, err
	}
	if h.Kid == "" {
		return Claims{}, ErrNoKeyID
	}
	k, err := d.Key(h.Kid)
	if err != nil {
		return Claims{}, err
	}
	return k.Verify(token)
}
