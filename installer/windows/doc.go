// Package windowsinstaller holds what the Windows installers need from Go: the mapping of `git describe`
// onto an MSI ProductVersion (used by build-msi.sh through ./msiversion), and the tests of the MSI built
// from tortie.wxs (msiinfo tables against golden text), the CNI config it installs, and the PowerShell
// module in powershell/ (a syntax and help check written here because PowerShell itself cannot be
// installed from the package registries this project builds from).
package windowsinstaller
