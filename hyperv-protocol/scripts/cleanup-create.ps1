# After create's answer was lost (the deadline, a dropped session, a garbled result line):
# remove what THIS run of create may have left, and nothing else. A VM is removed only when it
# is this run's: named <name>.cs-create-<id> (the name New-VM gave it, with this run's id), or named
# $P.name with this VM's ownership line and this run's cloudstack-create-id line (the Set-VM
# that names it writes them), so a VM that existed before (a create sent again for a VM that is
# there, refused with VM_EXISTS) is never touched; with it, only the disk attached to it at
# the path create chose; and this run's own .partial copy. Every other VM of the name is
# counted and left alone.
function Main{Need-Rights;$x=@()
    $l=@(Hyper-V\Get-VM);$a=@($l|Where-Object{$_.Name -ceq $P.name})
    $m=@($a|Where-Object{(Test-Ours $_) -and (([string]$_.Notes -split '\r?\n') -ccontains ('cloudstack-create-id='+$P.id))})
    $o=@($m+@($l|Where-Object{$_.Name -ceq ($P.name+'.cs-create-'+$P.id)}))
    if($o.Count -gt 1){Fail 'VM_AMBIGUOUS' $o.Count}
    foreach($v in $o){
        $d=@(Hyper-V\Get-VMHardDiskDrive -VM $v|ForEach-Object{$_.Path}|Where-Object{$_ -eq $P.disk})
        if((State $v) -ne 'Off'){Hyper-V\Stop-VM -VM $v -TurnOff -Force}
        Hyper-V\Remove-VM -VM $v -Force
        foreach($f in $d){Remove-Item -LiteralPath $f -Force;$x+=$f}
    }
    $q=$P.disk+'.'+$P.id+'.partial'
    if(Test-Path -LiteralPath $q){Remove-Item -LiteralPath $q -Force;$x+=$q}
    Done @{removed_vm=[bool]$o.Count;removed=$x;kept=$a.Count-$m.Count}
}
