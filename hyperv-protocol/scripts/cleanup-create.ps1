# After create ran out of time (closing the session kills PowerShell mid-way): remove what it
# may have left. Only our VM (ownership line), the disk attached to it at the path create
# chose, and create's own .partial copy; never a disk we cannot prove create made.
function Main{Need-Rights;$v=Find-Ours;$x=@()
    if($v){
        $d=@(Hyper-V\Get-VMHardDiskDrive -VM $v|ForEach-Object{$_.Path}|Where-Object{$_ -eq $P.disk})
        if((State $v) -ne 'Off'){Hyper-V\Stop-VM -VM $v -TurnOff -Force}
        Hyper-V\Remove-VM -VM $v -Force
        foreach($f in $d){Remove-Item -LiteralPath $f -Force;$x+=$f}
    }
    $q=$P.disk+'.partial'
    if(Test-Path -LiteralPath $q){Remove-Item -LiteralPath $q -Force;$x+=$q}
    Done @{removed_vm=[bool]$v;removed=$x}
}
