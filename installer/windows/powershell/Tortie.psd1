@{
    # tortie's PowerShell module for Windows nodes: thin wrappers over msiexec and tortie-node.exe.
    # docs/install-windows.md shows how to use it.
    RootModule        = 'Tortie.psm1'
    ModuleVersion     = '0.1.0'
    GUID              = '3f5e0c2a-8d41-4f7b-9a63-2b1c7e94d058'
    Author            = 'tortie'
    CompanyName       = 'tortie'
    Copyright         = '(c) tortie contributors. Apache-2.0.'
    Description       = 'Install, inspect and remove tortie (Kubernetes pod networking and network policy) on a Windows node.'
    PowerShellVersion = '5.1'
    FunctionsToExport = @(
        'Install-TortieNode',
        'Uninstall-TortieNode',
        'Get-TortieNodeStatus',
        'Test-TortiePrerequisites'
    )
    CmdletsToExport   = @()
    VariablesToExport = @()
    AliasesToExport   = @()
    PrivateData       = @{
        PSData = @{
            Tags       = @('Kubernetes', 'CNI', 'Networking', 'Calico', 'Windows')
            ProjectUri = 'https://github.com/tortie-net/tortie'
        }
    }
}
