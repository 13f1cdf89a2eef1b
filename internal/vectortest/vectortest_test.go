package vectortest

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestVectorsInSync checks that testdata/vectors holds byte-identical copies
// of the *.json files of the upstream vector set in ../shared/vectors, next to
// the module root. A stand-alone clone has no upstream copy and skips.
func TestVectorsInSync(t *testing.T) {
	local := Dir(t)
	upstream := filepath.Join(moduleRoot(t), "..", "shared", "vectors")
	upstreamNames := jsonFiles(t, upstream)
	if upstreamNames == nil {
		t.Skipf("upstream vector set %s is absent, so the copies in %s cannot be checked against it", upstream, local)
	}
	localNames := jsonFiles(t, local)

	var problems []string
	for _, name := range upstreamNames {
		if !slices.Contains(localNames, name) {
			problems = append(problems, name+": missing here")
			continue
		}
		want, err := os.ReadFile(filepath.Join(upstream, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(Load(t, name), want) {
			problems = append(problems, name+": contents differ")
		}
	}
	for _, name := range localNames {
		if !slices.Contains(upstreamNames, name) {
			problems = append(problems, name+": not in the upstream set")
		}
	}
	if len(problems) > 0 {
		t.Errorf("%s has drifted from %s:\n\t%s\nfix: copy the upstream files over (cp %s/*.json %s/) and delete the ones no longer upstream",
			local, upstream, strings.Join(problems, "\n\t"), upstream, local)
	}
}

// jsonFiles returns the sorted names of the *.json files in dir, or nil if dir
// does not exist.
func jsonFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	names := []string{}
	for _, e := range entries {
		if !e.IsDir() && filepath.Ext(e.Name()) == ".json" {
			names = append(names, e.Name())
		}
	}
	return names
}
