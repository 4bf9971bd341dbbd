// Command lispd is the LISP router daemon: it runs the roles its
// configuration names (Map-Server, Map-Resolver, …).
//
//	lispd --config FILE          run
//	lispd check --config FILE    validate the configuration and exit
//	lispd version
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/lispd/lispd/internal/config"
	"github.com/lispd/lispd/internal/daemon"
)

func main() {
	// A Map-Server's heap is mostly long-lived registrations: collect at
	// 50% growth rather than 100% so a million of them cost ~1.5x, not 2x,
	// their size in RSS. GOGC in the environment still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	var cfgFile string
	code := 0
	root := &cobra.Command{
		Use:           "lispd --config FILE",
		Short:         "LISP router daemon (RFC 9300/9301): Map-Server, Map-Resolver, xTR roles",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfgFile == "" {
				code = 2
				return errors.New("--config FILE is required")
			}
			if err := serve(cfgFile, stderr); err != nil {
				code = 1
				return err
			}
			return nil
		},
	}
	root.PersistentFlags().StringVarP(&cfgFile, "config", "c", "", "configuration file (YAML)")
	root.AddCommand(&cobra.Command{
		Use:   "check --config FILE",
		Short: "validate a configuration file: prints FILE:LINE: message for every error",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfgFile == "" {
				code = 2
				return errors.New("--config FILE is required")
			}
			if _, err := config.Load(cfgFile); err != nil {
				code = 1
				return err
			}
			fmt.Fprintf(stdout, "%s: ok\n", cfgFile)
			return nil
		},
	})
	root.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "print the version",
		Args:  cobra.NoArgs,
		Run:   func(*cobra.Command, []string) { fmt.Fprintf(stdout, "lispd %s\n", daemon.Version) },
	})
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(stderr, err)
		if code == 0 {
			code = 2
		}
	}
	return code
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.Level}
	if c.Format == config.LogFormatJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// serve runs the daemon until SIGTERM or SIGINT; SIGHUP reloads the
// configuration file (a bad file is reported and the old one kept).
func serve(file string, logOut io.Writer) error {
	cfg, err := config.Load(file)
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log, logOut)
	d, err := daemon.New(cfg, daemon.Options{Log: log})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				nc, err := config.Load(file)
				if err != nil {
					log.Error("reload failed; keeping the running configuration", "err", err)
					continue
				}
				if err := d.Reload(nc); err != nil {
					log.Error("reload failed", "err", err)
				}
			}
		}
	}()
	return d.Run(ctx)
}
