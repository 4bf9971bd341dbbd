package admin

import "syscall"

// umask sets the process umask so the socket is born 0600, with no window
// in which another user could connect.
func umask(m int) int { return syscall.Umask(m) }
