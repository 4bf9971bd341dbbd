package cli

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/spf13/cobra"
)

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		code int
		out  string
	}{
		{"ok", nil, ExitOK, ""},
		{"failed", Failed(errors.New("boom")), ExitFailed, "tool: boom\n"},
		{"usage", Usagef("bad %s", "arg"), ExitUsage, "tool: bad arg\nRun 'tool --help' for usage.\n"},
		{"raw", &Error{Code: ExitUsage, Err: errors.New("f.yaml:3: bad"), Raw: true}, ExitUsage, "f.yaml:3: bad\n"},
		{"silent", Exit(7), 7, ""},
		{"foreign", errors.New("cobra says"), ExitUsage, "tool: cobra says\nRun 'tool --help' for usage.\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := &cobra.Command{Use: "tool", RunE: func(*cobra.Command, []string) error { return tc.err }}
			var out, errOut bytes.Buffer
			Setup(root, nil, &out, &errOut)
			if code := Run(context.Background(), root, nil, &errOut); code != tc.code || errOut.String() != tc.out {
				t.Errorf("Run: exit %d, stderr %q; want %d, %q", code, errOut.String(), tc.code, tc.out)
			}
		})
	}
	// A bad flag is a usage error.
	root := &cobra.Command{Use: "tool", RunE: func(*cobra.Command, []string) error { return nil }}
	var errOut bytes.Buffer
	Setup(root, nil, &errOut, &errOut)
	if code := Run(context.Background(), root, []string{"--nope"}, &errOut); code != ExitUsage {
		t.Errorf("bad flag: exit %d, want %d (%s)", code, ExitUsage, errOut.String())
	}
}
