package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/moqgo/moq/token"
)

const tokenUsage = `usage: moq token generate [--algorithm ALG] --out FILE [--public FILE] [--id KID]
       moq token sign --key FILE [--root PATH] [--publish PATH]... [--subscribe PATH]... [--cluster] [--expires DURATION]
       moq token verify --key FILE|--key-dir DIR < TOKEN
Generates keys, and signs and verifies tokens compatible with moq-token (@moq/token).`

// runToken dispatches "moq token generate|sign|verify".
func runToken(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, tokenUsage)
		return errUsage
	}
	switch args[0] {
	case "generate":
		return tokenGenerate(args[1:], stdout, stderr)
	case "sign":
		return tokenSign(args[1:], stdout, stderr)
	case "verify":
		return tokenVerify(args[1:], stdin, stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(stderr, tokenUsage)
		return flag.ErrHelp
	}
	fmt.Fprintf(stderr, "moq token: unknown subcommand %q\n%s\n", args[0], tokenUsage)
	return errUsage
}

// tokenFlags makes the flag set of a token subcommand with its usage line.
func tokenFlags(name, usage, about string) *flag.FlagSet {
	fs := flag.NewFlagSet("token "+name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: moq token "+name+" "+usage)
		fmt.Fprintln(fs.Output(), about)
		fs.PrintDefaults()
	}
	return fs
}

// usageError reports a command-line mistake with the subcommand's usage.
func usageError(fs *flag.FlagSet, format string, args ...any) error {
	fmt.Fprintf(fs.Output(), "moq %s: %s\n", fs.Name(), fmt.Sprintf(format, args...))
	fs.Usage()
	return errUsage
}

func algorithmNames() string {
	var names []string
	for _, a := range token.Algorithms() {
		names = append(names, string(a))
	}
	return strings.Join(names, ", ")
}

func tokenGenerate(args []string, stdout, stderr io.Writer) error {
	fs := tokenFlags("generate", "[--algorithm ALG] --out FILE [--public FILE] [--id KID]",
		"Writes a new key (base64url JWK): the private key to --out and, for an asymmetric\n"+
			"algorithm, the public key a relay verifies with to --public.")
	algName := fs.String("algorithm", string(token.HS256), "algorithm: "+algorithmNames())
	out := fs.String("out", "", "file for the key that signs (keep it secret); never overwritten")
	public := fs.String("public", "", "file for the public key (asymmetric algorithms); never overwritten")
	kid := fs.String("id", "", "key id (letters, digits, - and _), the file name in a relay's key directory (default: random)")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if *out == "" {
		return usageError(fs, "missing --out")
	}
	alg, err := token.ParseAlgorithm(*algName)
	if err != nil {
		return fmt.Errorf("unknown --algorithm %q: want one of %s", *algName, algorithmNames())
	}
	if *public != "" && alg.Symmetric() {
		return fmt.Errorf("--public: %s keys are shared secrets with no public half; give the relay the --out file, or use an asymmetric --algorithm such as EdDSA or ES256", alg)
	}
	if *public != "" && *public == *out {
		return errors.New("--out and --public must be different files")
	}
	for _, f := range []struct{ flag, path string }{{"--out", *out}, {"--public", *public}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err == nil {
			return fmt.Errorf("%s %s already exists; remove it or choose another file", f.flag, f.path)
		}
	}
	key, err := token.GenerateKey(alg, *kid)
	if errors.Is(err, token.ErrUnsupportedAlgorithm) {
		return err
	}
	if err != nil {
		return fmt.Errorf("bad --id: %v", err)
	}
	if err := writeKey(key, "--out", *out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s signing key %q to %s\n", alg, key.ID(), *out)
	if *public == "" {
		return nil
	}
	pub, err := key.Public()
	if err != nil {
		return err
	}
	if err := writeKey(pub, "--public", *public); err != nil {
		_ = os.Remove(*out)
		return err
	}
	fmt.Fprintf(stdout, "wrote %s public key %q to %s\n", alg, key.ID(), *public)
	return nil
}

func writeKey(key *token.Key, flagName, path string) error {
	err := key.WriteFile(path)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s %s already exists; remove it or choose another file", flagName, path)
	}
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", flagName, err)
	}
	return nil
}

func tokenSign(args []string, stdout, stderr io.Writer) error {
	fs := tokenFlags("sign", "--key FILE [--root PATH] [--publish PATH]... [--subscribe PATH]... [--cluster] [--expires DURATION]",
		"Prints a token granting publish and subscribe path prefixes below --root.\n"+
			"The empty prefix (--publish \"\") grants everything below the root.")
	keyFile := fs.String("key", "", "key file to sign with (from moq token generate --out)")
	root := fs.String("root", "", "path the --publish and --subscribe prefixes are relative to")
	var publish, subscribe stringList
	fs.Var(&publish, "publish", "path prefix the holder may publish below (repeatable)")
	fs.Var(&subscribe, "subscribe", "path prefix the holder may subscribe to (repeatable)")
	cluster := fs.Bool("cluster", false, "mark the holder as a relay of the same cluster")
	expires := fs.String("expires", "", "lifetime, e.g. 30m, 12h or 7d (default: the token never expires)")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if *keyFile == "" {
		return usageError(fs, "missing --key")
	}
	if len(publish) == 0 && len(subscribe) == 0 {
		return errors.New(`the token would grant nothing: add --publish PATH and/or --subscribe PATH (--subscribe "" grants everything below --root)`)
	}
	claims := token.Claims{Root: *root, Publish: publish, Subscribe: subscribe, Cluster: *cluster}
	if *expires != "" {
		lifetime, err := parseLifetime(*expires)
		if err != nil {
			return err
		}
		claims.Expires = time.Now().Add(lifetime)
	}
	key, err := loadKeyFlag(*keyFile)
	if err != nil {
		return err
	}
	jwt, err := key.Sign(claims)
	if errors.Is(err, token.ErrCannotSign) {
		return fmt.Errorf("--key %s: %v; sign with the private key, the file moq token generate wrote to --out", *keyFile, err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, jwt)
	return nil
}

// parseLifetime reads a Go duration or a whole number of days ("7d").
func parseLifetime(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if days, ok := strings.CutSuffix(s, "d"); ok && err != nil {
		n, nerr := strconv.Atoi(days)
		if nerr == nil && n > 0 && n <= 100*365 {
			d, err = time.Duration(n)*24*time.Hour, nil
		}
	}
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("bad --expires %q: want a positive duration such as 30m, 12h or 7d", s)
	}
	return d, nil
}

func loadKeyFlag(path string) (*token.Key, error) {
	key, err := token.LoadKey(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("--key %s does not exist; create one with moq token generate --out %s", path, path)
	}
	if err != nil {
		return nil, fmt.Errorf("--key: %w", err)
	}
	return key, nil
}

// maxTokenInput bounds what verify reads from stdin.
const maxTokenInput = 1 << 20

func tokenVerify(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := tokenFlags("verify", "--key FILE|--key-dir DIR < TOKEN",
		"Reads a token from stdin and prints its claims as JSON, or says why it is refused.")
	keyFile := fs.String("key", "", "key file to verify with (a public key, or the shared secret)")
	keyDir := fs.String("key-dir", "", "directory of {kid}.jwk key files, chosen by the token's kid")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	var v token.Verifier
	switch {
	case *keyFile == "" && *keyDir == "":
		return usageError(fs, "missing --key or --key-dir")
	case *keyFile != "" && *keyDir != "":
		return usageError(fs, "use --key or --key-dir, not both")
	case *keyFile != "":
		key, err := loadKeyFlag(*keyFile)
		if err != nil {
			return err
		}
		v = key
	default:
		dir, err := token.LoadKeyDir(*keyDir)
		if err != nil {
			return fmt.Errorf("--key-dir: %w", err)
		}
		v = dir
	}
	in, err := io.ReadAll(io.LimitReader(stdin, maxTokenInput))
	if err != nil {
		return fmt.Errorf("reading the token from stdin: %w", err)
	}
	jwt := strings.TrimSpace(string(in))
	if jwt == "" {
		return errors.New("no token on stdin; pipe one in: moq token sign ... | moq token verify --key FILE")
	}
	claims, err := v.Verify(jwt)
	if err != nil {
		return fmt.Errorf("token refused: %w", err)
	}
	out, err := json.MarshalIndent(claims, "", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", out)
	return nil
}
