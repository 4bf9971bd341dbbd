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
	"runtime/metrics"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/lispd/lispd/internal/config"
	"github.com/lispd/lispd/internal/daemon"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	var cfgFile, stateDir string
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
			if err := serve(cfgFile, stateDir, stderr); err != nil {
				code = 1
				return err
			}
			return nil
		},
	}
	root.PersistentFlags().StringVarP(&cfgFile, "config", "c", "", "configuration file (YAML)")
	root.Flags().StringVar(&stateDir, "state-directory", "", "the default of map-server.state-directory (labs give each lispd its own)")
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

// newLogger builds the daemon's logger; its level is a variable a reload
// sets.
func newLogger(c config.Log, w io.Writer, level *slog.LevelVar) *slog.Logger {
	level.Set(c.Level)
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == config.LogFormatJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// serve runs the daemon until SIGTERM or SIGINT; SIGHUP reloads the
// configuration file (a bad file is reported and the old one kept).
func serve(file, stateDir string, logOut io.Writer) error {
	cfg, err := config.Load(file)
	if err != nil {
		return err
	}
	level := new(slog.LevelVar)
	log := newLogger(cfg.Log, logOut, level)
	d, err := daemon.New(cfg, daemon.Options{Log: log, LogLevel: level, StateDirectory: stateDir})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if os.Getenv("GOGC") == "" && os.Getenv("GOMEMLIMIT") == "" {
		go tuneGC(ctx)
	}
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
				// The daemon logs what it applied, or why it refused (then
				// nothing changed).
				_, _ = d.Reload(nc)
			}
		}
	}()
	return d.Run(ctx)
}

// tuneGC sets the GC ratio from the live heap so that about 96 MiB of
// garbage may build up between collections, but never more than 10 times
// nor less than half the live heap. A small table (the common case) then
// collects seldom — with GOGC's fixed 100 %, a Map-Resolver's per-request
// garbage forced a GC every few hundred milliseconds, seen as milliseconds
// of tail latency — while a million registrations still cost at most 1.5
// times their size, as with GOGC=50. (A memory limit instead thrashed once
// the runtime's own overhead passed it.)
func tuneGC(ctx context.Context) {
	defer debug.SetGCPercent(100)
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	set := func() {
		metrics.Read(sample)
		live := uint64(4 << 20)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			live = max(live, sample[0].Value.Uint64())
		}
		debug.SetGCPercent(int(min(1000, max(50, (96<<20)*100/live))))
	}
	set()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			set()
		}
	}
}
