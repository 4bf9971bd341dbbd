package mapserver

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"time"
)

// The replay state RFC 9301 §5.6 says to save persistently — the last
// nonce of every (site, xTR, key ID) — is written to StateFile in the
// state directory: at most once per saveInterval while it changes, and at
// Close. A crash loses at most that interval: a Map-Register captured in
// it could be replayed once after the restart, until its xTR registers
// again (lispd xTRs start their nonces at the clock, so they are above
// whatever was saved).

// StateFile is the name of the Map-Server's file in its state directory.
const StateFile = "map-server-replay.json"

const saveInterval = time.Second

type savedState struct {
	Version int        `json:"version"`
	XTRs    []savedXTR `json:"xtrs"`
}

type savedXTR struct {
	Site   string       `json:"site"`
	XTRID  string       `json:"xtr-id,omitempty"` // hex
	Source netip.Addr   `json:"source,omitzero"`  // an xTR without xTR-ID
	Last   int64        `json:"last"`             // unix ns of its last Map-Register
	Nonces []savedNonce `json:"nonces"`
}

type savedNonce struct {
	KeyID uint8  `json:"key-id"`
	Nonce uint64 `json:"nonce"`
}

// OpenState makes dir the Map-Server's state directory: it creates it if
// needed, checks that it can write there, and loads the replay state saved
// by a previous run (for the sites still configured). The error says what
// is wrong with the directory or the file.
func (s *Server) OpenState(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state directory %s: %w", dir, unwrapPath(err))
	}
	probe, err := os.CreateTemp(dir, ".write-test-*")
	if err != nil {
		return fmt.Errorf("state directory %s is not writable: %w", dir, unwrapPath(err))
	}
	probe.Close()
	os.Remove(probe.Name())
	path := filepath.Join(dir, StateFile)
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		data = nil
	case err != nil:
		return fmt.Errorf("%s: %w", path, unwrapPath(err))
	}
	var st savedState
	if data != nil {
		if err := json.Unmarshal(data, &st); err != nil || st.Version != 1 {
			if err == nil {
				err = fmt.Errorf("version %d", st.Version)
			}
			return fmt.Errorf("%s is not a replay state file lispd can read (%v); move it away to start without replay state", path, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stateDir = dir
	loaded := 0
	for _, sx := range st.XTRs {
		if _, ok := s.sites[sx.Site]; !ok {
			continue
		}
		var k xtrKey
		if sx.XTRID != "" {
			b, err := hex.DecodeString(sx.XTRID)
			if err != nil || len(b) != len(k.id) {
				return fmt.Errorf("%s: bad xtr-id %q; move it away to start without replay state", path, sx.XTRID)
			}
			copy(k.id[:], b)
		} else {
			k.src = sx.Source
		}
		x := s.xtrLocked(sx.Site, k, sx.Last)
		x.last = sx.Last
		for _, n := range sx.Nonces {
			x.setNonce(n.KeyID, n.Nonce)
		}
		loaded++
	}
	s.stateDirty = false
	if loaded > 0 {
		s.log.Info("replay state loaded", "file", path, "xtrs", loaded)
	}
	return nil
}

// unwrapPath drops the path an *fs.PathError repeats.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// snapshotLocked returns the state to save, or nil when there is nothing
// new or no state directory.
func (s *Server) snapshotLocked(now int64, force bool) *savedState {
	if s.stateDir == "" || !s.stateDirty || (!force && now-s.lastSave < int64(saveInterval)) {
		return nil
	}
	s.stateDirty, s.lastSave = false, now
	st := &savedState{Version: 1}
	for name, t := range s.xtrs {
		for k, x := range t.xtrs {
			if len(x.nonces) == 0 {
				continue
			}
			sx := savedXTR{Site: name, Last: x.last}
			if k.src.IsValid() {
				sx.Source = k.src
			} else {
				sx.XTRID = hex.EncodeToString(k.id[:])
			}
			for _, n := range x.nonces {
				sx.Nonces = append(sx.Nonces, savedNonce{KeyID: n.keyID, Nonce: n.nonce})
			}
			st.XTRs = append(st.XTRs, sx)
		}
	}
	return st
}

// writeState writes st atomically: a new file renamed over the old one.
func (s *Server) writeState(st *savedState) {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	if err := writeFileAtomic(filepath.Join(s.stateDir, StateFile), st); err != nil {
		s.c.stateSaveFailed.Inc()
		if now := s.opts.Now().UnixNano(); now-s.saveLog.Load() >= int64(time.Minute) {
			s.saveLog.Store(now)
			s.log.Error("cannot save replay state", "dir", s.stateDir, "err", err)
		}
	}
}

func writeFileAtomic(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// Close saves the replay state if it changed since the last save. The
// daemon calls it when it stops.
func (s *Server) Close() {
	s.mu.Lock()
	st := s.snapshotLocked(s.now(), true)
	s.mu.Unlock()
	if st != nil {
		s.writeState(st)
	}
}
