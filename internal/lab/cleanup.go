package lab

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
)

// DownByName removes everything the lab called name left on the machine,
// without a Lab object: after a crash, or from another process (`lisplab
// down`). It finds the lab's namespaces in /run/netns by their
// "<name>-" prefix (and in its state file), stops the processes listed by
// the pid files under /run/lisplab/<name>/ (SIGTERM, SIGKILL after
// DefaultStopTimeout), kills anything else running in the namespaces,
// deletes the namespaces, the hosts files under /etc/netns it wrote, any
// veth of the lab that ended up in the host namespace, and
// /run/lisplab/<name>/. A lab that is not there is not an error.
func DownByName(name string) error {
	if len(name) > maxLabName || !labNameRE.MatchString(name) {
		return fmt.Errorf("lab %q: not a valid lab name", name)
	}
	var topo *Topology
	if st, err := readState(name); err == nil {
		topo = st.Topology
	}
	return downByName(name, topo, DefaultStopTimeout)
}

// procEnv is the variable that marks a process Start began, so cleanup
// can tell it from an unrelated process that reused its pid.
const procEnv = "LISPLAB"

func procMarker(lab, node, name string) string {
	return procEnv + "=" + lab + "/" + node + "/" + name
}

func downByName(name string, topo *Topology, timeout time.Duration) error {
	var errs []error
	dir := labDir(name)

	// The namespaces: what /run/netns holds under the prefix (a lab name
	// has no '-', so the prefix is the lab's alone) and what the state
	// recorded.
	nsSet := map[string]bool{}
	listed, err := listNetns(name + "-")
	errs = append(errs, err)
	for _, ns := range listed {
		if nodeNameRE.MatchString(strings.TrimPrefix(ns, name+"-")) {
			nsSet[ns] = true
		}
	}
	if topo != nil {
		for _, n := range topo.Nodes {
			nsSet[Namespace(name, n.Name)] = true
		}
	}

	// Processes: those of the pid files (checked by their marker), and any
	// process left in the namespaces (Exec'd commands, children).
	pids := map[int]bool{}
	pidFiles, _ := filepath.Glob(filepath.Join(dir, "*.pid"))
	for _, f := range pidFiles {
		if pid := readPID(f); pid > 0 && alive(pid) && hasEnvPrefix(pid, procEnv+"="+name+"/") {
			pids[pid] = true
		}
	}
	inodes := map[uint64]bool{}
	for ns := range nsSet {
		if ino := netnsInode(ns); ino != 0 {
			inodes[ino] = true
		}
	}
	for _, pid := range pidsInNetns(inodes) {
		pids[pid] = true
	}
	errs = append(errs, terminateAll(slices.Sorted(maps.Keys(pids)), timeout))

	for _, ns := range slices.Sorted(maps.Keys(nsSet)) {
		errs = append(errs, deleteNetns(ns))
	}

	// Hosts files: ours carry the marker; other files are left alone.
	etcDirs, _ := filepath.Glob(filepath.Join(EtcNetns, name+"-*"))
	for ns := range nsSet {
		etcDirs = append(etcDirs, filepath.Join(EtcNetns, ns))
	}
	slices.Sort(etcDirs)
	for _, d := range slices.Compact(etcDirs) {
		errs = append(errs, removeHosts(d, name))
	}

	errs = append(errs, removeHostVeths(name))

	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("lab %s down: %w", name, err)
	}
	return nil
}

func readPID(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 1 {
		return 0
	}
	return pid
}

// removeHosts deletes the files of dir that the lab wrote, then dir if
// empty.
func removeHosts(dir, lab string) error {
	for _, f := range etcFiles {
		path := filepath.Join(dir, f)
		data, err := os.ReadFile(path)
		if err == nil && strings.HasPrefix(string(data), hostsMarker(lab)) {
			if err := os.Remove(path); err != nil {
				return err
			}
		}
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrExist) && !isNotEmpty(err) {
		return err
	}
	return nil
}

func isNotEmpty(err error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe) && strings.Contains(pe.Err.Error(), "not empty")
}

// removeHostVeths deletes links in the host namespace that carry the lab's
// alias. The lab never creates any there; this only catches a veth end
// that something moved out of a lab namespace.
func removeHostVeths(lab string) error {
	links, err := netlink.LinkList()
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return fmt.Errorf("list host links: %w", err)
	}
	var errs []error
	for _, link := range links {
		if strings.HasPrefix(link.Attrs().Alias, "lisplab:"+lab+":") {
			if err := netlink.LinkDel(link); err != nil {
				errs = append(errs, fmt.Errorf("delete host link %s: %w", link.Attrs().Name, err))
			}
		}
	}
	return errors.Join(errs...)
}
