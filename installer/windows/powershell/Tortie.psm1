# tortie's PowerShell module: thin wrappers over msiexec and tortie-node.exe. The logic (settings file,
# recovery actions, service lifecycle) lives in tortie-node.exe, where it is tested; these functions only
# find the pieces, pass the parameters on and turn exit codes into errors.
Set-StrictMode -Version 3.0

# The MSI's UpgradeCode (installer/windows/tortie.wxs): it finds the installed tortie, whatever version.
$script:UpgradeCode = '{6D0B8A8E-5E2F-4C43-9B7E-1F6E2C1A7D31}'
$script:InstallDir = Join-Path $env:ProgramFiles 'tortie'
$script:DataDir = Join-Path $env:ProgramData 'tortie'

function Get-TortieNodeExe {
    # Internal: the installed tortie-node.exe, or an error saying how to install it.
    $exe = Join-Path $script:InstallDir 'tortie-node.exe'
    if (-not (Test-Path -LiteralPath $exe)) {
        throw "tortie-node.exe is not installed at $exe; run Install-TortieNode first."
    }
    return $exe
}

function Get-TortieProductCode {
    # Internal: the ProductCode of the installed tortie MSI, or $null.
    $installer = New-Object -ComObject WindowsInstaller.Installer
    foreach ($code in $installer.RelatedProducts($script:UpgradeCode)) {
        return $code
    }
    return $null
}

function Invoke-Msiexec {
    # Internal: runs msiexec with a verbose log and turns its exit code into an error.
    param([string[]]$Arguments, [string]$LogPath)
    $all = $Arguments + @('/qn', '/norestart', '/l*v', "`"$LogPath`"")
    $p = Start-Process -FilePath 'msiexec.exe' -ArgumentList $all -Wait -PassThru -NoNewWindow
    switch ($p.ExitCode) {
        0 { return }
        3010 { Write-Warning 'Windows asks for a restart to finish (msiexec exit code 3010).'; return }
        1603 { throw "msiexec failed (1603, fatal error during installation); see $LogPath (search for 'Return value 3')." }
        1618 { throw 'msiexec failed (1618): another installation is in progress; try again when it ends.' }
        default { throw "msiexec failed with exit code $($p.ExitCode); see $LogPath." }
    }
}

function Find-TortieNodeExe {
    # Internal: the tortie-node.exe to run: the given path, else the installed one, else the one next to
    # this module (a release folder), or an error saying what to pass.
    param([string]$Path)
    if ($Path) {
        return (Resolve-Path -LiteralPath $Path -ErrorAction Stop).Path
    }
    foreach ($candidate in @((Join-Path $script:InstallDir 'tortie-node.exe'), (Join-Path $PSScriptRoot 'tortie-node.exe'))) {
        if (Test-Path -LiteralPath $candidate) {
            return $candidate
        }
    }
    throw 'tortie-node.exe not found: pass -TortieNodeExe (a release ships it next to the MSI), or install tortie first.'
}

function Test-TortiePrerequisites {
    <#
    .SYNOPSIS
    Checks that this Windows node can run tortie.

    .DESCRIPTION
    Runs `tortie-node.exe service check` and returns one object per check (Check, Ok, Detail):
      - the Windows build is Windows Server 2019 (17763) or later, as the HNS VXLAN overlay needs;
      - the Host Network Service (hns) is installed and running (the Containers feature);
      - the containerd service is installed (the container runtime the kubelet uses);
      - UDP port 4789 (VXLAN) is not held by another program;
      - the session is elevated (installing a service needs it).
    Before tortie is installed, pass the tortie-node.exe of the release with -TortieNodeExe.

    .PARAMETER Quiet
    Return only $true when every check passes and $false otherwise.

    .PARAMETER TortieNodeExe
    The tortie-node.exe to run (default: the installed one, else the one next to this module).

    .EXAMPLE
    Test-TortiePrerequisites -TortieNodeExe .\tortie-node.exe | Format-Table

    .EXAMPLE
    if (-not (Test-TortiePrerequisites -Quiet)) { throw 'this node is not ready for tortie' }
    #>
    [CmdletBinding()]
    param(
        [switch]$Quiet,
        [string]$TortieNodeExe
    )
    $exe = Find-TortieNodeExe -Path $TortieNodeExe
    # Exit code 1 means a check failed; the JSON says which.
    $json = & $exe service check --json
    $parsed = $json | Out-String | ConvertFrom-Json
    $results = foreach ($c in $parsed) {
        [pscustomobject]@{ Check = $c.check; Ok = $c.ok; Detail = $c.detail }
    }
    if ($Quiet) {
        return (@($results | Where-Object { -not $_.Ok }).Count -eq 0)
    }
    return $results
}

function Install-TortieNode {
    <#
    .SYNOPSIS
    Installs (or upgrades) tortie on this node from the MSI.

    .DESCRIPTION
    Runs Test-TortiePrerequisites, then msiexec on the MSI with the given settings as MSI properties.
    The MSI installs tortie-node.exe and tortiectl.exe under Program Files\tortie, the CNI plugin and
    its configuration into the kubelet's CNI folders, and registers and starts the tortie-node service;
    the settings land in %ProgramData%\tortie\tortie-node.env. Installing a newer MSI upgrades in place
    and keeps the settings; a parameter left out keeps its current value.

    .PARAMETER MsiPath
    The tortie MSI (tortie-x64.msi).

    .PARAMETER KubeConfig
    The kubeconfig tortie-node uses (default C:\ProgramData\tortie\kubeconfig, which the CNI
    configuration also names).

    .PARAMETER DatastoreType
    kubernetes (default) or etcdv3.

    .PARAMETER NodeName
    The node's name in Kubernetes when it is not the host name.

    .PARAMETER CniBinDir
    The kubelet's CNI binary folder (default C:\opt\cni\bin).

    .PARAMETER CniConfDir
    The kubelet's CNI configuration folder (default C:\etc\cni\net.d).

    .PARAMETER LogPath
    Where msiexec writes its verbose log (default %TEMP%\tortie-install.log).

    .PARAMETER SkipPrerequisites
    Install even when Test-TortiePrerequisites reports a problem.

    .PARAMETER TortieNodeExe
    The tortie-node.exe that checks the prerequisites before the install (default: the installed one,
    else the one next to this module).

    .EXAMPLE
    Install-TortieNode -MsiPath .\tortie-x64.msi -KubeConfig C:\k\config -TortieNodeExe .\tortie-node.exe

    .EXAMPLE
    Install-TortieNode -MsiPath .\tortie-x64.msi -DatastoreType etcdv3 -NodeName win-node-1
    #>
    [CmdletBinding(SupportsShouldProcess = $true)]
    param(
        [Parameter(Mandatory = $true)][string]$MsiPath,
        [string]$KubeConfig,
        [ValidateSet('kubernetes', 'etcdv3')][string]$DatastoreType,
        [string]$NodeName,
        [string]$CniBinDir,
        [string]$CniConfDir,
        [string]$LogPath = (Join-Path $env:TEMP 'tortie-install.log'),
        [switch]$SkipPrerequisites,
        [string]$TortieNodeExe
    )
    $msi = (Resolve-Path -LiteralPath $MsiPath -ErrorAction Stop).Path
    if (-not $SkipPrerequisites) {
        $failed = @(Test-TortiePrerequisites -TortieNodeExe $TortieNodeExe | Where-Object { -not $_.Ok })
        if ($failed.Count -gt 0) {
            $what = ($failed | ForEach-Object { "$($_.Check): $($_.Detail)" }) -join '; '
            throw "prerequisites not met: $what (use -SkipPrerequisites to install anyway)"
        }
    }
    $props = @()
    if ($KubeConfig) { $props += "KUBECONFIG=`"$KubeConfig`"" }
    if ($DatastoreType) { $props += "DATASTORE_TYPE=$DatastoreType" }
    if ($NodeName) { $props += "NODENAME=$NodeName" }
    # Directory properties end in a backslash.
    if ($CniBinDir) { $props += "CNI_BIN_DIR=`"$($CniBinDir.TrimEnd('\'))\`"" }
    if ($CniConfDir) { $props += "CNI_CONF_DIR=`"$($CniConfDir.TrimEnd('\'))\`"" }
    if ($PSCmdlet.ShouldProcess($msi, 'install tortie')) {
        Invoke-Msiexec -Arguments (@('/i', "`"$msi`"") + $props) -LogPath $LogPath
        Get-TortieNodeStatus
    }
}

function Uninstall-TortieNode {
    <#
    .SYNOPSIS
    Removes tortie from this node.

    .DESCRIPTION
    Uninstalls the tortie MSI, which stops and removes the tortie-node service and removes the programs,
    the CNI plugin and the CNI configuration it installed. The settings and logs under
    %ProgramData%\tortie stay for a later reinstall unless -Purge is given. HNS networks and endpoints
    tortie created are removed by the agent's cleanup, not by this function.

    .PARAMETER Purge
    Also remove %ProgramData%\tortie (settings and logs).

    .PARAMETER LogPath
    Where msiexec writes its verbose log (default %TEMP%\tortie-uninstall.log).

    .EXAMPLE
    Uninstall-TortieNode

    .EXAMPLE
    Uninstall-TortieNode -Purge
    #>
    [CmdletBinding(SupportsShouldProcess = $true)]
    param(
        [switch]$Purge,
        [string]$LogPath = (Join-Path $env:TEMP 'tortie-uninstall.log')
    )
    $code = Get-TortieProductCode
    if ($null -eq $code) {
        Write-Warning 'tortie is not installed (no product with its UpgradeCode).'
    } elseif ($PSCmdlet.ShouldProcess($code, 'uninstall tortie')) {
        Invoke-Msiexec -Arguments @('/x', $code) -LogPath $LogPath
    }
    if ($Purge -and (Test-Path -LiteralPath $script:DataDir) -and $PSCmdlet.ShouldProcess($script:DataDir, 'remove settings and logs')) {
        Remove-Item -LiteralPath $script:DataDir -Recurse -Force
    }
}

function Get-TortieNodeStatus {
    <#
    .SYNOPSIS
    Shows the state of tortie on this node.

    .DESCRIPTION
    Returns one object with the installed version (tortie-node.exe version), the service state
    (tortie-node.exe service status: running, stopped or not-installed), whether the agent reports
    itself ready (tortie-node.exe health --ready), and where the settings and the log are.

    .EXAMPLE
    Get-TortieNodeStatus

    .EXAMPLE
    Get-Content (Get-TortieNodeStatus).LogFile -Tail 50
    #>
    [CmdletBinding()]
    param()
    $exe = Get-TortieNodeExe
    $version = (& $exe version | Select-Object -First 1)
    $state = (& $exe service status | Select-Object -First 1)
    if ($LASTEXITCODE -ne 0) {
        throw "tortie-node.exe service status failed with exit code $LASTEXITCODE"
    }
    $null = & $exe health --ready 2>&1
    $ready = ($LASTEXITCODE -eq 0)
    [pscustomobject]@{
        Version  = $version
        Service  = $state
        Ready    = $ready
        Settings = Join-Path $script:DataDir 'tortie-node.env'
        LogFile  = Join-Path $script:DataDir 'logs\tortie-node.log'
    }
}

Export-ModuleMember -Function Install-TortieNode, Uninstall-TortieNode, Get-TortieNodeStatus, Test-TortiePrerequisites
