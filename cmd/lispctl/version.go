package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/lispd/lispd/internal/cli"
	"github.com/spf13/cobra"
)

// version is set at link time by release builds:
//
//	go build -ldflags "-X main.version=v1.2.3" ./cmd/lispctl
//
// Otherwise the module version (go install) or the VCS revision is shown.
var version = ""

func newVersionCmd(s streams) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the lispctl version",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(s.out, versionString())
			return err
		},
	}
}

// versionString is "lispctl VERSION (REVISION, GOVERSION OS/ARCH)".
func versionString() string {
	v, rev := version, ""
	if info, ok := debug.ReadBuildInfo(); ok {
		if v == "" {
			v = info.Main.Version
		}
		rev = vcsRevision(info)
	}
	if v == "" {
		v = "(devel)"
	}
	extra := runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
	if rev != "" {
		extra = rev + ", " + extra
	}
	return fmt.Sprintf("lispctl %s (%s)", v, extra)
}

// vcsRevision is the short commit the binary was built from, "-dirty"
// when the tree had changes, or "" when go build recorded none.
func vcsRevision(info *debug.BuildInfo) string {
	var rev string
	var dirty bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" && dirty {
		rev += "-dirty"
	}
	return rev
}

// noArgs is cobra.NoArgs reported as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return cli.Usagef("%s takes no arguments, got %q", cmd.CommandPath(), args)
	}
	return nil
}
