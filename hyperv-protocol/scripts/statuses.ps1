# Every VM with the CloudStack UUID of its ownership line ('' without one): hyperv-ext decides
# which are CloudStack's and under which instance name (it knows the UUIDs it has seen and
# whether unmarked VMs may be adopted).
function Main{Need-Rights
    $l=@(Hyper-V\Get-VM|ForEach-Object{$u='';if([string]$_.Notes -cmatch '(?m)^cloudstack-vm-uuid=(\S+)'){$u=$Matches[1]};[ordered]@{name=$_.Name;state=[string]$_.State;uuid=$u}})
    Done @{vms=$l}
}
