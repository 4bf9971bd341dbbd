package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lispd/lispd/internal/cli"
	"github.com/lispd/lispd/internal/lab"
)

// Every example topology is valid, and so is the lispd configuration
// lisplab would write for each of its LISP nodes. No root needed.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob("../../examples/lab/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"ms-cluster.yaml", "multihomed.yaml", "nat.yaml", "pxtr.yaml", "two-instances.yaml", "two-sites.yaml"}
	var got []string
	for _, f := range files {
		got = append(got, filepath.Base(f))
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("examples: %v, want %v", got, want)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			topo, err := loadTopology(f, "")
			if err != nil {
				t.Fatal(err)
			}
			lisp := 0
			for _, n := range topo.topo.Nodes {
				if n.LispdConfig != nil {
					lisp++
				}
			}
			if lisp == 0 || len(topo.configs) != lisp {
				t.Errorf("%d lispd configurations for %d LISP nodes", len(topo.configs), lisp)
			}
			for _, nc := range topo.configs {
				wantSock := filepath.Join(lab.RunRoot, topo.topo.Name, nc.node+".sock")
				if nc.cfg.Admin.Socket != wantSock || nc.socket != wantSock {
					t.Errorf("%s: admin socket %q, want %q", nc.node, nc.cfg.Admin.Socket, wantSock)
				}
				if nc.path != filepath.Join(lab.RunRoot, topo.topo.Name, nc.node+".yaml") {
					t.Errorf("%s: config path %q", nc.node, nc.path)
				}
			}
			// Each file explains itself and how to try it.
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"# " + strings.TrimSuffix(filepath.Base(f), ".yaml") + ": ",
				"lisplab up examples/lab/" + filepath.Base(f), "lisplab down examples/lab/" + filepath.Base(f)} {
				if !strings.Contains(string(data), want) {
					t.Errorf("the comment header lacks %q", want)
				}
			}
			// The hosts files will resolve every node name and alias (a
			// node without an address, a switch, has no name there).
			addressed := 0
			for _, n := range topo.topo.Nodes {
				if len(topo.topo.Addrs(n.Name)) > 0 {
					addressed++
				}
			}
			if hosts := topo.topo.DefaultHosts(); len(hosts) < addressed {
				t.Errorf("hosts: %v", hosts)
			}
		})
	}
	r := lisplabAs(t, opts{euid: 1000}, append([]string{"check"}, files...)...).wantCode(t, cli.ExitOK)
	if n := strings.Count(r.stdout, ": ok: "); n != len(files) {
		t.Errorf("check printed %d ok lines for %d files:\n%s", n, len(files), r.stdout)
	}
}

// Problems in a lispd section are reported at their line of the topology
// file, whatever the style it is written in.
func TestConfigErrors(t *testing.T) {
	const head = "name: t\nnodes:\n  - name: n1\n" // lines 1-3
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"block style with comments and blank lines", head + `    lispd:
      # the Map-Server

      map-server:
        sites:
          - name: a
            keys: [{key-id: 1, secret: x}]
            eid-prefixes:

              - {prefix: 198.51.100.0/33}
      map-resolvr: {}
`, []string{
			`t.yaml:13: node n1: lispd: map-server.sites[0].eid-prefixes[0].prefix: invalid prefix "198.51.100.0/33"`,
			`t.yaml:14: node n1: lispd: unknown key "map-resolvr" at top level (did you mean "map-resolver"?)`,
		}},
		{"flow style over several lines", head + `    lispd: {petr: {},
      xtr: {itr: true,
            register-interval: often}}
`, []string{`t.yaml:6: node n1: lispd: xtr.register-interval: invalid duration "often"`}},
		{"aliases point at the anchor", head + `    lispd:
      xtr: &x
        itr: maybe
  - name: n2
    lispd:
      xtr: *x
`, []string{
			`t.yaml:6: node n1: lispd: xtr.itr: expected true or false, got "maybe"`,
			`t.yaml:6: node n2: lispd: xtr.itr: expected true or false, got "maybe"`,
		}},
		{"admin.socket is lisplab's", head + `    lispd:
      petr: {}
      admin:
        metrics: 127.0.0.1:9342
        socket: /tmp/mine.sock
`, []string{`t.yaml:8: node n1: lispd: admin.socket is set by lisplab (/run/lisplab/t/n1.sock`}},
		{"no role", head + "    lispd: {log: {level: debug}}\n",
			[]string{"t.yaml:4: node n1: lispd: no LISP role configured"}},
		{"missing secret file", head + `    lispd:
      map-server:
        sites:
          - name: a
            keys: [{key-id: 1, secret-file: nope.key}]
            eid-prefixes: [{prefix: 198.51.100.0/24}]
`, []string{"t.yaml:8: node n1: lispd: map-server.sites[0].keys[0].secret-file: "}},
		{"topology problems come first", "name: t\nnodes:\n  - name: n1\n    rol: x\n",
			[]string{`t.yaml:4: node: unknown key "rol"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "t.yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := loadTopology(path, "")
			if err == nil {
				t.Fatalf("no error; want %q", tc.want)
			}
			lines := strings.Split(strings.ReplaceAll(err.Error(), path, "t.yaml"), "\n")
			if len(lines) != len(tc.want) {
				t.Fatalf("errors:\n%s\nwant %d:\n%s", strings.Join(lines, "\n"), len(tc.want), strings.Join(tc.want, "\n"))
			}
			for i, want := range tc.want {
				if !strings.HasPrefix(lines[i], want) {
					t.Errorf("error %d:\n%s\nwant it to start with:\n%s", i+1, lines[i], want)
				}
			}
			// check and up report the same, and exit 2 (up before needing anything).
			for _, cmd := range []string{"check", "up"} {
				r := lisplab(t, cmd, path)
				if r.code != cli.ExitUsage || !strings.Contains(strings.ReplaceAll(r.stderr, path, "t.yaml"), tc.want[0]) {
					t.Errorf("lisplab %s: exit %d, stderr:\n%s", cmd, r.code, r.stderr)
				}
			}
		})
	}
}

// What lisplab writes: the section as the user wrote it (in block style),
// admin.socket added to an admin mapping that is there, secret files
// found relative to the topology file.
func TestConfigContent(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "site.key"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "t.yaml")
	topo := `name: t
nodes:
  - name: ms
    lispd:
      admin: {metrics: "127.0.0.1:9342"}
      map-server:
        sites: [{name: a, keys: [{key-id: 1, secret-file: site.key}], eid-prefixes: [{prefix: 198.51.100.0/24}]}]
  - name: px
    lispd: {petr: {}, admin: }
  - name: host
`
	if err := os.WriteFile(path, []byte(topo), 0o644); err != nil {
		t.Fatal(err)
	}
	top, err := loadTopology(path, "other")
	if err != nil {
		t.Fatal(err)
	}
	if len(top.configs) != 2 {
		t.Fatalf("%d configs", len(top.configs))
	}
	ms, px := top.configs[0], top.configs[1]
	if ms.cfg.Admin.Socket != "/run/lisplab/other/ms.sock" || ms.cfg.Admin.Metrics != "127.0.0.1:9342" {
		t.Errorf("ms admin: %+v", ms.cfg.Admin)
	}
	if string(ms.cfg.MapServer.Sites[0].Keys[0].Secret) != "s3cret" {
		t.Errorf("secret from the file next to the topology: %q", ms.cfg.MapServer.Sites[0].Keys[0].Secret)
	}
	if !strings.Contains(string(ms.data), "secret-file: "+filepath.Join(dir, "site.key")) {
		t.Errorf("ms config does not name the secret file absolutely:\n%s", ms.data)
	}
	if !strings.HasPrefix(string(ms.data), "# lispd configuration of node ms of lab other") {
		t.Errorf("ms config header:\n%s", ms.data)
	}
	if px.cfg.Admin.Socket != "/run/lisplab/other/px.sock" || px.cfg.PETR == nil {
		t.Errorf("px: %+v", px.cfg)
	}
	// A bad --name is the flag's fault.
	if _, err := loadTopology(path, "bad-name"); err == nil || !strings.Contains(err.Error(), "--name bad-name") {
		t.Errorf("bad --name: %v", err)
	}
}
