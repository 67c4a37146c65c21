// Package must is for tests: a fixture that cannot be made ends the test
// there, with the error, instead of failing it later for a reason that
// hides the cause.
package must

import (
	"os"
	"testing"
)

// Do fails the test at once when err is not nil.
func Do(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

// Read reads a file the test needs.
func Read(tb testing.TB, path string) []byte {
	tb.Helper()
	data, err := os.ReadFile(path)
	Do(tb, err)
	return data
}

// Show is what a file holds, or why it cannot be read: for a failure
// message, where the missing file is part of what went wrong.
func Show(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return string(data)
}
