package main

import (
	"bufio"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/lispd/lispd/internal/cli"
	"github.com/lispd/lispd/internal/pcap"
	"github.com/lispd/lispd/internal/render"
)

// decodeOptions are the flags of lispctl decode.
type decodeOptions struct {
	hex     string
	hexSet  bool // --hex was given, even if empty, so that "--hex ''" is an error, not a pcap read
	data    bool
	json    bool
	jsonl   bool
	verbose bool
}

const decodeLong = `Decode LISP packets from a capture file, or one message given as hex.

From a classic pcap file (not pcapng; FILE "-" reads standard input) every
UDP datagram to or from port 4342 is decoded as a LISP control message, and
every one to or from port 4341 as a LISP data packet: the 8-byte LISP header
and a summary of the IP packet inside. An Encapsulated Control Message
shows the message it carries. Other packets are skipped and counted in the
closing summary line. Ethernet, VLAN, Linux cooked (SLL, SLL2), BSD loopback
and raw IP captures are understood.

A message that fails to decode is reported with the reason, naming the
message, the field and its byte offset in the UDP payload (with --verbose,
a hex dump shows the bytes), and decoding goes on with the next packet.

Text output is one block per packet: a header line
  #FRAME TIME SRC:PORT > DST:PORT LENGTH bytes
then a one-line summary; --verbose adds every field, flags spelled out and
each record and locator on its own lines. --json prints a JSON array and
--jsonl one JSON object per line, with the keys of the lispd interface
contract ("type", "nonce", "flags", "records", "eid-prefix", "ttl-minutes",
"locators", "inner" for the message inside an ECM, "data-header", ...).

Exit status: 0 when every LISP message decoded; 1 when at least one did
not, or the capture ends in a broken record (everything before it is still
shown); 2 for usage errors and input that cannot be read as a pcap file.`

const decodeExample = `  lispctl decode capture.pcap
  lispctl decode -v capture.pcap
  tcpdump -U -w - udp port 4341 or udp port 4342 | lispctl decode -
  lispctl decode --json capture.pcap | jq '.[] | select(.type == "Map-Register")'
  lispctl decode --hex '10 40 00 01 01 02 03 04 05 06 07 08 00 01 0a 01 01 01 00 01 c0 00 02 01 00 18 00 01 0a 02 02 00'
  lispctl decode --data --hex 0xc8abcdef0000ff03`

func newDecodeCmd(s streams) *cobra.Command {
	var o decodeOptions
	cmd := &cobra.Command{
		Use:     "decode {FILE.pcap | - | --hex HEX}",
		Short:   "Decode LISP packets from a pcap file or a hex string",
		Long:    decodeLong,
		Example: decodeExample,
		Args:    cobra.ArbitraryArgs, // checked in RunE, to report every mistake as a usage error
		RunE: func(cmd *cobra.Command, args []string) error {
			o.hexSet = cmd.Flags().Changed("hex")
			if err := o.check(args); err != nil {
				return err
			}
			return o.run(s, args)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.hex, "hex", "", "decode one message given as hex (spaces, colons and a 0x prefix are allowed)")
	f.BoolVar(&o.data, "data", false, "with --hex: the bytes are a data packet starting at the LISP header, not a control message")
	f.BoolVar(&o.json, "json", false, "print a JSON array, one object per packet")
	f.BoolVar(&o.jsonl, "jsonl", false, "print JSON lines: one compact object per packet")
	f.BoolVarP(&o.verbose, "verbose", "v", false, "show every field of each message (text output)")
	return cmd
}

// check rejects flag and argument combinations that make no sense.
func (o *decodeOptions) check(args []string) error {
	switch {
	case len(args) > 1:
		return cli.Usagef("decode takes one FILE, got %d", len(args))
	case o.hexSet && len(args) == 1:
		return cli.Usagef("give either FILE or --hex, not both")
	case !o.hexSet && len(args) == 0:
		return cli.Usagef("decode needs a pcap FILE (or - for standard input) or --hex HEX")
	case o.data && !o.hexSet:
		return cli.Usagef("--data applies to --hex only; in a pcap file the UDP port tells data from control")
	case o.json && o.jsonl:
		return cli.Usagef("give --json or --jsonl, not both")
	}
	return nil
}

func (o *decodeOptions) run(s streams, args []string) error {
	out := bufio.NewWriter(s.out)
	sk := o.newSink(out)
	var err error
	if o.hexSet {
		err = o.runHex(sk)
	} else {
		err = o.runPcap(s, out, sk, args[0])
	}
	// Flush even after an error: what was decoded before it is shown. A
	// failed flush matters more than a message that did not decode, since
	// the user saw neither.
	if ferr := out.Flush(); ferr != nil && (err == nil || err == errDecodeFailed) {
		err = outputError(ferr)
	}
	return err
}

// runHex decodes the single message of --hex.
func (o *decodeOptions) runHex(sk sink) error {
	b, err := parseHex(o.hex)
	if err != nil {
		return cli.Usagef("--hex: %v", err)
	}
	var p render.Packet
	if o.data {
		p = render.DataPacket(b)
	} else {
		p = render.ControlPacket(b)
	}
	p.Frame = 1
	if err := sk.packet(&p); err != nil {
		return outputError(err)
	}
	if err := sk.close(); err != nil {
		return outputError(err)
	}
	if p.Failed() {
		return errDecodeFailed
	}
	return nil
}

// runPcap decodes a capture file and ends with the summary line: on
// stdout for text, on stderr for JSON so that stdout stays valid JSON.
func (o *decodeOptions) runPcap(s streams, out *bufio.Writer, sk sink, name string) error {
	in, closeIn, err := openInput(s, name)
	if err != nil {
		return inputError(err)
	}
	defer closeIn()
	if name == "-" {
		name = "standard input" // for the error messages
	}
	pr, err := pcap.NewReader(in)
	if err != nil {
		return inputError(fmt.Errorf("%s: %w", name, err))
	}
	if !linkTypeSupported(pr.LinkType()) {
		return inputError(fmt.Errorf("%s: link type %d is not supported", name, pr.LinkType()))
	}

	st, err := decodeFrames(pr, sk)
	if err != nil {
		return outputError(err)
	}
	if err := sk.close(); err != nil {
		return outputError(err)
	}
	if err := out.Flush(); err != nil { // before the summary, which may go to stderr
		return outputError(err)
	}
	summaryTo := io.Writer(out)
	if o.json || o.jsonl {
		summaryTo = s.err
	}
	fmt.Fprintln(summaryTo, st.summary())
	if st.readErr != nil {
		return &cli.Error{Code: cli.ExitFailed, Err: fmt.Errorf("%s: %w", name, st.readErr)}
	}
	if st.failed > 0 {
		return errDecodeFailed
	}
	return nil
}

// openInput opens FILE, or standard input for "-".
func openInput(s streams, name string) (io.Reader, func(), error) {
	if name == "-" {
		return s.in, func() {}, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close() }, nil
}

func (o *decodeOptions) newSink(w io.Writer) sink {
	switch {
	case o.json:
		return &jsonArraySink{w: w}
	case o.jsonl:
		return &jsonLinesSink{w: w}
	}
	return &textSink{w: w, verbose: o.verbose}
}
