// Command msiversion prints the MSI ProductVersion for a `git describe` string and a commit count:
//
//	go run ./installer/windows/msiversion "$(git describe --tags --always --dirty)" "$(git rev-list --count HEAD)"
//
// See windowsinstaller.MSIVersion for the mapping.
package main

import (
	"fmt"
	"os"
	"strconv"

	windowsinstaller "github.com/tortie-net/tortie/installer/windows"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: msiversion GIT_DESCRIBE COMMIT_COUNT")
		os.Exit(2)
	}
	n, err := strconv.Atoi(os.Args[2])
	if err != nil {
		fmt.Fprintf(os.Stderr, "msiversion: commit count %q is not a number\n", os.Args[2])
		os.Exit(2)
	}
	v, err := windowsinstaller.MSIVersion(os.Args[1], n)
	if err != nil {
		fmt.Fprintf(os.Stderr, "msiversion: %v\n", err)
		os.Exit(1)
	}
	fmt.Println(v)
}
