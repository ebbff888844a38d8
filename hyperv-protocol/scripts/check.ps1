# The preflight: every fact `check` reports about the host, in one answer. READ-ONLY: it runs
# only Get-* cmdlets, Test-Path and an ACL read; it creates, changes and removes nothing.
# Data (each absent = not probed): vhd_path vm_path (folders), template iso (files). Rust
# matches the switch among the names listed here.
# Each probe catches its own error, so one failure does not hide the other answers.
function Probe($b){try{& $b}catch{@{error=$_.Exception.Message}}}
# Whether the account may write in a folder, without writing there: the ACL's allow and deny
# rules whose SID is in this session's token ($S), for the folder itself (not inherit-only)
# and for the files created in it (object-inherit; CREATOR OWNER S-1-3-0 is the account
# then). The masks go back raw; Rust decides (it maps the generic rights too).
function Folder($p){if(-not $p){return}
    if(-not(Test-Path -LiteralPath $p -PathType Container)){return @{exists=$false}}
    @{exists=$true;acl=(Probe{$a=@(0,0,0,0)
        foreach($r in (Get-Acl -LiteralPath $p).GetAccessRules($true,$true,[Security.Principal.SecurityIdentifier])){
            $m=[int]$r.FileSystemRights;$k=[int]$r.AccessControlType;$i=$r.IdentityReference;$me=$S -contains $i
            if($me -and -not([int]$r.PropagationFlags -band 2)){$a[$k]=$a[$k] -bor $m}
            if(([int]$r.InheritanceFlags -band 2) -and ($me -or $i.Value -eq 'S-1-3-0')){$a[2+$k]=$a[2+$k] -bor $m}}
        @{allow=$a[0];deny=$a[1];file_allow=$a[2];file_deny=$a[3]}})}
}
function Main{
    $i=[Security.Principal.WindowsIdentity]::GetCurrent();$S=@($i.User)+@($i.Groups)
    $o=@{powershell=[string]$PSVersionTable.PSVersion;user=$i.Name;module=$null;vmhost=$null;switches=$null
        hyperv_admin=$S -contains [Security.Principal.SecurityIdentifier]'S-1-5-32-578'
        admin=$S -contains [Security.Principal.SecurityIdentifier]'S-1-5-32-544'
        vhd_path=(Folder $P.vhd_path);vm_path=(Folder $P.vm_path);template=$null;iso=$null}
    if($P.template){$o.template=Test-Path -LiteralPath $P.template -PathType Leaf}
    if($P.iso){$o.iso=Test-Path -LiteralPath $P.iso -PathType Leaf}
    $m=Get-Module -ListAvailable -Name Hyper-V|Sort-Object Version|Select-Object -Last 1
    if($m){$o.module=[string]$m.Version
        $o.vmhost=Probe{$h=Hyper-V\Get-VMHost;@{name=[string]$h.Name;vhd_path=[string]$h.VirtualHardDiskPath;vm_path=[string]$h.VirtualMachinePath}}
        if(-not $o.vmhost.error){$o.switches=@(Hyper-V\Get-VMSwitch|ForEach-Object{[string]$_.Name})}}
    Done $o
}
