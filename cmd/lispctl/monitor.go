package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/cli"
)

// newMonitorCmd is `lispctl monitor`: the daemon's events as they happen,
// one timestamped line each (gobgp monitor, debug lisp), until interrupted.
func newMonitorCmd(s streams) *cobra.Command {
	var (
		asJSON  bool
		filter  string
		history int
		also    []string
	)
	c := &cobra.Command{
		Use:   "monitor",
		Short: "print lispd's events as they happen (registrations, moves, map-cache, locators, SMRs, drops)",
		Long: `monitor prints the events of the lispd at --socket as they happen, one
timestamped line each, until interrupted: registrations, moves, withdrawals
and expiries (Map-Server), map-cache installs, updates and expiries, locators
going up and down, SMRs, hosts that moved away (xTR), publications,
authentication failures and dropped control packets (rate-limited).

--filter takes a comma-separated list of event types or families (the part
before '-': "registration", "map-cache", "locator", "smr"). --also watches
more daemons in the same output; each line then starts with the daemon's
name (its socket's file name without extension).

Event types: ` + strings.Join(adminapi.EventTypes, ", "),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			types, err := adminapi.ParseEventTypes(filter)
			if err != nil {
				return cli.Usagef("--filter: %v", err)
			}
			if history < 0 {
				return cli.Usagef("--history: must not be negative")
			}
			sock, _ := cmd.Flags().GetString("socket")
			socks := append([]string{sock}, also...)
			return monitor(cmd.Context(), s, socks, adminapi.EventQuery{Types: types, History: history}, asJSON)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print each event as a JSON object on a line of its own")
	c.Flags().StringVar(&filter, "filter", "", "event types or families to show, comma-separated (default: all)")
	c.Flags().IntVar(&history, "history", 0, "first print up to N recent events the daemon kept (at most 1024)")
	c.Flags().StringArrayVar(&also, "also", nil, "admin socket of another lispd to watch too (repeatable)")
	return c
}

// monitor streams the events of the daemons at socks to s.out until ctx
// ends (exit 0) or a stream fails (exit 1).
func monitor(ctx context.Context, s streams, socks []string, q adminapi.EventQuery, asJSON bool) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex // one line at a time, from any stream
		wg       sync.WaitGroup
		firstErr error
	)
	emit := func(e adminapi.Event) error {
		mu.Lock()
		defer mu.Unlock()
		var err error
		if asJSON {
			var b []byte
			if b, err = marshal(e, ""); err == nil {
				_, err = s.out.Write(append(b, '\n'))
			}
		} else {
			_, err = fmt.Fprintln(s.out, e.String())
		}
		if err != nil {
			return outputError(err)
		}
		return nil
	}
	for _, sock := range socks {
		node := ""
		if len(socks) > 1 {
			node = strings.TrimSuffix(filepath.Base(sock), filepath.Ext(sock))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := adminapi.NewClient(sock).Events(ctx, q, func(e adminapi.Event) error {
				e.Node = node
				return emit(e)
			})
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				cancel() // one stream failing ends the command
			}
		}()
	}
	wg.Wait()
	var ce *cli.Error
	if firstErr != nil && !errors.As(firstErr, &ce) {
		firstErr = cli.Failed(firstErr)
	}
	return firstErr
}
