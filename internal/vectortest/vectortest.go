// Package vectortest gives tests anywhere in the module access to the wire
// test vectors kept in testdata/vectors at the module root.
package vectortest

import (
	"os"
	"path/filepath"
	"testing"
)

// Dir returns the vector directory, <module root>/testdata/vectors. The module
// root is the nearest directory at or above the working directory (the
// package directory under go test) that holds go.mod.
func Dir(tb testing.TB) string {
	tb.Helper()
	return filepath.Join(moduleRoot(tb), "testdata", "vectors")
}

// Load returns the contents of the named vector file, such as "lite-03.json".
func Load(tb testing.TB, name string) []byte {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join(Dir(tb), name))
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

func moduleRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("vectortest: no go.mod at or above the working directory")
		}
		dir = parent
	}
}
