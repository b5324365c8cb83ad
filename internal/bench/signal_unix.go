package bench

import "syscall"

// syscallQuit asks nginx for a graceful shutdown.
const syscallQuit = syscall.SIGQUIT
