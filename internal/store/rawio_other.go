//go:build !(linux && (amd64 || arm64 || riscv64 || ppc64 || ppc64le || s390x || loong64 || mips64 || mips64le))

package store

import "os"

// On other ports the log is written through the runtime: on 32-bit Linux
// pwrite64 takes its offset in a register pair, aligned differently from
// one port to the next, which a raw call here would have to spell out.

// rawIO says rawWriteAt is a raw system call here.
const rawIO = false

// rawWriteAt writes all of b at off in f.
func rawWriteAt(f *os.File, b []byte, off int64) error {
	_, err := f.WriteAt(b, off)
	return err
}
