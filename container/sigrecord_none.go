//go:build !(slurmrun_fwdsig && linux && (amd64 || arm64))

package container

const runtimeRecordAvailable = false

// runtimeSignalRecord would read the runtime's record of the inherited
// signal state; builds without the slurmrun_fwdsig tag cannot.
func runtimeSignalRecord() (ignored, blocked uint64, ok bool) { return 0, 0, false }
