package windowsinstaller

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestPowerShellModule checks installer/windows/powershell with CheckPSModule (PowerShell itself is not
// installable here; see pscheck.go).
func TestPowerShellModule(t *testing.T) {
	psd1, err := os.ReadFile("powershell/Tortie.psd1")
	if err != nil {
		t.Fatal(err)
	}
	psm1, err := os.ReadFile("powershell/Tortie.psm1")
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range CheckPSModule("Tortie.psd1", string(psd1), "Tortie.psm1", string(psm1)) {
		t.Error(err)
	}
	s, err := scanPS("Tortie.psm1", string(psm1))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, f := range s.functions() {
		got[f.Name] = f.Params
	}
	want := map[string][]string{
		"Get-TortieNodeExe":        nil,
		"Get-TortieProductCode":    nil,
		"Invoke-Msiexec":           {"Arguments", "LogPath"},
		"Find-TortieNodeExe":       {"Path"},
		"Test-TortiePrerequisites": {"Quiet", "TortieNodeExe"},
		"Install-TortieNode":       {"MsiPath", "KubeConfig", "DatastoreType", "NodeName", "CniBinDir", "CniConfDir", "LogPath", "SkipPrerequisites", "TortieNodeExe"},
		"Uninstall-TortieNode":     {"Purge", "LogPath"},
		"Get-TortieNodeStatus":     nil,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("functions and parameters (-want +got):\n%s", diff)
	}
	// The module and the MSI agree on the UpgradeCode that finds the installed product.
	wxs, err := os.ReadFile("tortie.wxs")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.ToUpper(string(wxs)), `UPGRADECODE="6D0B8A8E-5E2F-4C43-9B7E-1F6E2C1A7D31"`) ||
		!strings.Contains(string(psm1), `'{6D0B8A8E-5E2F-4C43-9B7E-1F6E2C1A7D31}'`) {
		t.Error("Tortie.psm1's UpgradeCode does not match tortie.wxs")
	}
}

const goodPSD1 = `@{
    RootModule = 'M.psm1'
    ModuleVersion = '1.0.0'
    GUID = '3f5e0c2a-8d41-4f7b-9a63-2b1c7e94d058'
    FunctionsToExport = @('Get-Thing')
}`

const goodPSM1 = `function Get-Thing {
    <#
    .SYNOPSIS
    Gets.
    .DESCRIPTION
    Gets a thing.
    .PARAMETER Name
    The name.
    .PARAMETER Count
    How many.
    .EXAMPLE
    Get-Thing -Name x
    #>
    param([Parameter(Mandatory = $true)][string]$Name, [int]$Count = ($env:N + 1))
    $here = @"
    a "quoted" } word
"@
    $lit = @'
    { not code
'@
    "sub $($Name.Trim('}')) and ` + "`" + `" quote" # comment with ( and {
    'it''s'
}
Export-ModuleMember -Function Get-Thing
`

func TestCheckPSModule(t *testing.T) {
	tests := []struct {
		name       string
		psd1, psm1 string
		want       []string
	}{
		{name: "good", psd1: goodPSD1, psm1: goodPSM1},
		{name: "unclosed brace", psd1: goodPSD1, psm1: strings.Replace(goodPSM1, "'it''s'\n}", "'it''s'\n", 1), want: []string{`M.psm1:1: '{' is never closed`}},
		{name: "wrong closer", psd1: goodPSD1, psm1: strings.Replace(goodPSM1, "($env:N + 1)", "($env:N + 1]", 1), want: []string{`M.psm1:14: ']' does not close '(' opened on line 14`}},
		{name: "unclosed string", psd1: goodPSD1, psm1: strings.Replace(goodPSM1, "'it''s'", "'it''s", 1), want: []string{`M.psm1:22: string ' is never closed`}},
		{name: "unclosed here-string", psd1: goodPSD1, psm1: strings.Replace(goodPSM1, "\n'@", "\n '@", 1), want: []string{`M.psm1:18: here-string @' is never closed`}},
		{name: "unclosed block comment", psd1: goodPSD1, psm1: strings.Replace(goodPSM1, "#>", "", 1), want: []string{`M.psm1:2: block comment <# is never closed`}},
		{name: "unclosed subexpression", psd1: goodPSD1, psm1: strings.Replace(goodPSM1, "$($Name.Trim('}'))", "$($Name.Trim('}')", 1), want: []string{`M.psm1:21: string " is never closed`}},
		{name: "no help", psd1: goodPSD1, psm1: goodPSM1[:strings.Index(goodPSM1, "<#")] + goodPSM1[strings.Index(goodPSM1, "#>")+2:], want: []string{"M.psm1:1: function Get-Thing has no comment-based help"}},
		{name: "undocumented parameter", psd1: goodPSD1, psm1: strings.Replace(goodPSM1, "[int]$Count", "[int]$Number", 1), want: []string{"parameter $Number has no .PARAMETER Number", "documents .PARAMETER Count, which it does not have"}},
		{name: "help for a missing parameter", psd1: goodPSD1, psm1: strings.Replace(goodPSM1, "[string]$Name,", "[string]$Label,", 1), want: []string{"parameter $Label has no .PARAMETER Label", "documents .PARAMETER Name, which it does not have"}},
		{name: "no example", psd1: goodPSD1, psm1: strings.Replace(goodPSM1, ".EXAMPLE", ".NOTES", 1), want: []string{"its help has no .EXAMPLE"}},
		{name: "manifest exports another function", psd1: strings.Replace(goodPSD1, "'Get-Thing'", "'Get-Thing', 'Set-Thing'", 1), psm1: goodPSM1, want: []string{"M.psd1 exports [Get-Thing Set-Thing] but M.psm1 exports [Get-Thing]"}},
		{name: "exported but not defined", psd1: strings.Replace(goodPSD1, "'Get-Thing'", "'Get-Thing', 'Set-Thing'", 1), psm1: strings.Replace(goodPSM1, "-Function Get-Thing", "-Function Get-Thing, Set-Thing", 1), want: []string{"exports Set-Thing, which it does not define"}},
		{name: "wrong root module", psd1: strings.Replace(goodPSD1, "M.psm1", "Other.psm1", 1), psm1: goodPSM1, want: []string{"RootModule must be 'M.psm1'"}},
		{name: "bad guid", psd1: strings.Replace(goodPSD1, "3f5e0c2a-", "3f5e0c2a", 1), psm1: goodPSM1, want: []string{"GUID must be a GUID"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := CheckPSModule("M.psd1", tt.psd1, "M.psm1", tt.psm1)
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			if len(got) != len(tt.want) {
				t.Fatalf("errors:\n%s\nwant %d containing %q", strings.Join(got, "\n"), len(tt.want), tt.want)
			}
			for i := range got {
				if !strings.Contains(got[i], tt.want[i]) {
					t.Errorf("error %d = %q, want containing %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}
