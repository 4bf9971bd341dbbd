// Command lisplab builds LISP networks in Linux network namespaces from a
// topology file and runs lispd in them:
//
//	lisplab up FILE [--name NAME] [--replace] [--lispd PATH]
//	lisplab status [NAME] [--json]
//	lisplab exec NAME NODE -- CMD...
//	lisplab down FILE | --name NAME
//	lisplab check FILE...
//
// See `lisplab --help` and docs/user-guide.md.
package main

import (
	"context"
	"os"

	"github.com/lispd/lispd/internal/cli"
)

func main() {
	// An interrupt during `up` takes the half-built lab down again; `exec`
	// leaves SIGINT to the command (the terminal sends it to both).
	cli.Main(func(ctx context.Context) int {
		return run(os.Args[1:], streams{
			in: os.Stdin, out: os.Stdout, err: os.Stderr,
			getenv: os.Getenv, geteuid: os.Geteuid, executable: os.Executable,
			ctx: ctx,
		})
	})
}
