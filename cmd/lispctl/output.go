package main

import (
	"bytes"
	"encoding/json"
	"io"

	"github.com/lispd/lispd/internal/render"
)

// sink receives decoded packets in order and formats them.
type sink interface {
	packet(p *render.Packet) error
	// close ends the output (the JSON array's closing bracket). It is
	// called even when reading stopped early, so the output stays valid.
	close() error
}

type textSink struct {
	w       io.Writer
	verbose bool
}

func (s *textSink) packet(p *render.Packet) error { return render.WriteText(s.w, p, s.verbose) }
func (s *textSink) close() error                  { return nil }

// jsonArraySink streams an indented JSON array, one element per packet, so
// that a large capture is not held in memory.
type jsonArraySink struct {
	w io.Writer
	n int
}

func (s *jsonArraySink) packet(p *render.Packet) error {
	b, err := marshal(p, "  ")
	if err != nil {
		return err
	}
	sep := ",\n  "
	if s.n == 0 {
		sep = "[\n  "
	}
	s.n++
	_, err = io.WriteString(s.w, sep+string(b))
	return err
}

func (s *jsonArraySink) close() error {
	end := "\n]\n"
	if s.n == 0 {
		end = "[]\n"
	}
	_, err := io.WriteString(s.w, end)
	return err
}

// jsonLinesSink writes one compact object per line (JSON Lines).
type jsonLinesSink struct{ w io.Writer }

func (s *jsonLinesSink) packet(p *render.Packet) error {
	b, err := marshal(p, "")
	if err != nil {
		return err
	}
	_, err = s.w.Write(append(b, '\n'))
	return err
}

func (s *jsonLinesSink) close() error { return nil }

// marshal encodes v without a trailing newline, indented by indent when it
// is not empty. HTML escaping is off: summaries contain ">" and nobody
// embeds this output in a web page.
func marshal(v any, indent string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if indent != "" {
		enc.SetIndent(indent, "  ")
	}
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// marshalObject encodes v as an indented JSON document of its own (not an
// array element), without a trailing newline.
func marshalObject(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
