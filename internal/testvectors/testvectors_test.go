package testvectors

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCorpusComplete fails if a file the tests rely on is missing or the
// README no longer lists it.
func TestCorpusComplete(t *testing.T) {
	readme := string(Read(t, "README.md"))
	var files []string
	err := filepath.WalkDir(Dir(), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(Dir(), p)
		if rel != "README.md" {
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 20 {
		t.Fatalf("only %d corpus files under %s", len(files), Dir())
	}
	for _, f := range files {
		if !strings.Contains(readme, "`"+filepath.Base(f)+"`") {
			t.Errorf("README.md does not list %s", f)
		}
	}
}
