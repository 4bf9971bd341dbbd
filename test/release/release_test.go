// Package release tests what scripts/release ships: the static binaries of
// every target, the .deb packages, the systemd unit and the container
// image definition.
package release

import (
	"bufio"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// root is the repository's top directory.
const root = "../.."

// target is one architecture a release builds.
type target struct {
	dir     string // under dist/VERSION
	debArch string
	machine elf.Machine
	order   string // byte order
}

var targets = []target{
	{"linux-amd64", "amd64", elf.EM_X86_64, "LittleEndian"},
	{"linux-arm64", "arm64", elf.EM_AARCH64, "LittleEndian"},
	{"linux-armv7", "armhf", elf.EM_ARM, "LittleEndian"},
	{"linux-mipsle", "mipsel", elf.EM_MIPS, "LittleEndian"},
}

func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestRelease is acceptance 4 of issue 17: scripts/release builds static
// lispd and lispctl for linux amd64, arm64, armv7 and mipsle with the git
// version stamped in, and a .deb per architecture; the amd64 package holds
// what it should, extracts into a scratch root (dpkg -x), whose lispd
// accepts the shipped configuration (lispd check), and whose unit passes
// systemd-analyze verify where systemd is installed.
func TestRelease(t *testing.T) {
	if testing.Short() {
		t.Skip("builds eight binaries and four packages: not in -short")
	}
	for _, tool := range []string{"git", "dpkg-deb", "dpkg"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: the release test needs it", tool)
		}
	}
	version := strings.TrimSpace(run(t, root, nil, "git", "describe", "--tags", "--always", "--dirty"))
	outDir := t.TempDir()
	log := run(t, root, []string{"RELEASE_OUT=" + outDir}, "scripts/release")
	t.Logf("scripts/release:\n%s", log)
	dist := filepath.Join(outDir, version)

	for _, tg := range targets {
		for _, prog := range []string{"lispd", "lispctl"} {
			checkStatic(t, filepath.Join(dist, tg.dir, prog), tg)
		}
	}
	// The version from git is in both programs.
	amd := filepath.Join(dist, "linux-amd64")
	if out := run(t, "", nil, filepath.Join(amd, "lispd"), "version"); !strings.Contains(out, version) {
		t.Errorf("lispd version says %q, want %s", out, version)
	}
	if out := run(t, "", nil, filepath.Join(amd, "lispctl"), "version"); !strings.Contains(out, version) {
		t.Errorf("lispctl version says %q, want %s", out, version)
	}

	debs, _ := filepath.Glob(filepath.Join(dist, "*.deb"))
	var amdDeb string
	for _, tg := range targets {
		i := slices.IndexFunc(debs, func(p string) bool { return strings.HasSuffix(p, "_"+tg.debArch+".deb") })
		if i < 0 {
			t.Errorf("no .deb for %s among %v", tg.debArch, debs)
			continue
		}
		if got := strings.TrimSpace(run(t, "", nil, "dpkg-deb", "-f", debs[i], "Architecture")); got != tg.debArch {
			t.Errorf("%s: Architecture %s", debs[i], got)
		}
		if tg.debArch == "amd64" {
			amdDeb = debs[i]
		}
	}
	if amdDeb == "" {
		t.FailNow()
	}
	checkPackage(t, amdDeb, version)

	// Every file SHA256SUMS names is there with that sum.
	run(t, dist, nil, "sha256sum", "--check", "--quiet", "SHA256SUMS")
}

// checkStatic fails unless path is an ELF executable for tg with no
// program interpreter and no shared library: it runs on any Linux of that
// architecture, OpenWrt's musl included.
func checkStatic(t *testing.T, path string, tg target) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return
	}
	defer f.Close()
	if f.Machine != tg.machine || f.ByteOrder.String() != tg.order || f.Type != elf.ET_EXEC {
		t.Errorf("%s: %v %v %v, want %v %s executable", path, f.Machine, f.ByteOrder, f.Type, tg.machine, tg.order)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has a program interpreter: not static", path)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s needs %v: not static", path, libs)
	}
}

// checkPackage checks the amd64 .deb: its fields and files, then installs
// it into a scratch root and runs what it installed.
func checkPackage(t *testing.T, deb, version string) {
	t.Helper()
	fields := run(t, "", nil, "dpkg-deb", "-f", deb, "Package", "Version", "Maintainer", "Description")
	if !strings.Contains(fields, "Package: lispd") || !strings.Contains(fields, "Version: ") {
		t.Errorf("control fields:\n%s", fields)
	}
	// A release tag gives the Debian version, a bare commit 0.0.0~gitREV;
	// git describe's dashes become pluses (no Debian revision).
	debVersion := version
	if regexp.MustCompile(`^v?[0-9]+\.[0-9]+`).MatchString(version) {
		debVersion = strings.TrimPrefix(debVersion, "v")
	} else {
		debVersion = "0.0.0~git" + debVersion
	}
	debVersion = strings.ReplaceAll(debVersion, "-", "+")
	if !strings.Contains(fields, "Version: "+debVersion+"\n") {
		t.Errorf("the package version is not %s (git %s):\n%s", debVersion, version, fields)
	}
	listing := run(t, "", nil, "dpkg-deb", "-c", deb)
	want := []string{
		"./usr/sbin/lispd", "./usr/bin/lispctl", "./lib/systemd/system/lispd.service", "./etc/lispd/lispd.yaml",
		"./usr/share/lispd/grafana/lispd.json", "./usr/share/doc/lispd/README.md", "./usr/share/doc/lispd/interfaces.md",
		"./usr/share/doc/lispd/examples/map-server.yaml",
	}
	for _, w := range want {
		if !regexp.MustCompile(`(?m) ` + regexp.QuoteMeta(w) + `$`).MatchString(listing) {
			t.Errorf("the package lacks %s:\n%s", w, listing)
		}
	}
	for line := range strings.Lines(listing) {
		if strings.HasSuffix(strings.TrimSpace(line), "./usr/sbin/lispd") && !strings.HasPrefix(line, "-rwxr-xr-x") {
			t.Errorf("lispd is not 0755: %s", line)
		}
		if strings.HasSuffix(strings.TrimSpace(line), "./etc/lispd/lispd.yaml") && !strings.HasPrefix(line, "-rw-r-----") {
			t.Errorf("the configuration is not 0640: %s", line)
		}
	}
	ctl := t.TempDir()
	run(t, "", nil, "dpkg-deb", "-e", deb, ctl)
	conffiles, err := os.ReadFile(filepath.Join(ctl, "conffiles"))
	if err != nil || !strings.Contains(string(conffiles), "/etc/lispd/lispd.yaml") {
		t.Errorf("conffiles: %q %v", conffiles, err)
	}
	for _, s := range []string{"preinst", "postinst", "prerm", "postrm"} {
		fi, err := os.Stat(filepath.Join(ctl, s))
		if err != nil || fi.Mode()&0o111 == 0 {
			t.Errorf("maintainer script %s: %v", s, err)
			continue
		}
		run(t, "", nil, "sh", "-n", filepath.Join(ctl, s))
	}

	// Install into a scratch root and run the installed lispd on the
	// installed configuration.
	scratch := t.TempDir()
	run(t, "", nil, "dpkg", "-x", deb, scratch)
	out := run(t, "", nil, filepath.Join(scratch, "usr/sbin/lispd"), "check", "--config", filepath.Join(scratch, "etc/lispd/lispd.yaml"))
	if !strings.HasSuffix(strings.TrimSpace(out), ": ok") {
		t.Errorf("lispd check on the shipped configuration: %s", out)
	}
	checkUnit(t, scratch)
}

// checkUnit verifies the installed unit: its options (reload by SIGHUP,
// not root, capabilities, hardening) and, where systemd is installed,
// systemd-analyze verify with the commands pointed into the scratch root.
func checkUnit(t *testing.T, scratch string) {
	t.Helper()
	unit, err := os.ReadFile(filepath.Join(scratch, "lib/systemd/system/lispd.service"))
	if err != nil {
		t.Fatal(err)
	}
	opts := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(unit)))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && !strings.HasPrefix(k, "#") {
			opts[k] = v
		}
	}
	for k, want := range map[string]string{
		"ExecReload":       "/bin/kill -HUP $MAINPID",
		"ExecStart":        "/usr/sbin/lispd --config /etc/lispd/lispd.yaml",
		"User":             "lispd",
		"NoNewPrivileges":  "yes",
		"ProtectSystem":    "strict",
		"RuntimeDirectory": "lispd",
		"StateDirectory":   "lispd",
	} {
		if opts[k] != want {
			t.Errorf("unit: %s=%q, want %q", k, opts[k], want)
		}
	}
	for _, c := range []string{"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_BPF"} {
		if !strings.Contains(opts["AmbientCapabilities"], c) || !strings.Contains(opts["CapabilityBoundingSet"], c) {
			t.Errorf("unit: %s missing from the capabilities", c)
		}
	}
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Log("systemd-analyze not installed: unit not verified by systemd")
		return
	}
	dir := t.TempDir()
	local := strings.ReplaceAll(string(unit), "/usr/sbin/lispd", filepath.Join(scratch, "usr/sbin/lispd"))
	path := filepath.Join(dir, "lispd.service")
	if err := os.WriteFile(path, []byte(local), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("systemd-analyze", "verify", path)
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestContainerfile checks the container image definition without a
// container runtime: every file it copies from the repository exists, and
// the configuration it ships passes lispd check.
func TestContainerfile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "packaging/Containerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var sawEntry bool
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "COPY":
			if strings.HasPrefix(f[1], "--from") || strings.HasPrefix(f[1], "--chown") {
				continue
			}
			for _, src := range f[1 : len(f)-1] {
				if src == "." {
					continue
				}
				if _, err := os.Stat(filepath.Join(root, src)); err != nil {
					t.Errorf("Containerfile copies %s: %v", src, err)
				}
			}
		case "ENTRYPOINT":
			sawEntry = strings.Contains(line, "/etc/lispd/lispd.yaml")
		}
	}
	if !sawEntry {
		t.Error("the image does not run lispd on /etc/lispd/lispd.yaml")
	}
	bin := filepath.Join(t.TempDir(), "lispd")
	run(t, root, nil, "go", "build", "-o", bin, "./cmd/lispd")
	for _, cfg := range []string{"packaging/container/lispd.yaml", "packaging/lispd.yaml"} {
		out := run(t, "", nil, bin, "check", "--config", filepath.Join(root, cfg))
		if !strings.HasSuffix(strings.TrimSpace(out), ": ok") {
			t.Errorf("lispd check %s: %s", cfg, out)
		}
	}
}
