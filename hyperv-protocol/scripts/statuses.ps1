# Every VM that carries a CloudStack ownership line, keyed later by its (instance) name.
function Main{Need-Rights
    $l=@(Hyper-V\Get-VM|Where-Object{[string]$_.Notes -cmatch '(?m)^cloudstack-vm-uuid=\S'}|ForEach-Object{[ordered]@{name=$_.Name;state=[string]$_.State}})
    Done @{vms=$l}
}
