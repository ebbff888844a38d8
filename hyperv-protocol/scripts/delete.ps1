# Remove-VM keeps the disks: note them first, then delete only those under $P.vhd_path.
# Gone already is success (rights were proven first); success means the VM is truly gone
# (and a VM found without the ownership line is not adopted: it is gone).
function Main{Need-Rights;$v=Find-Ours
    if(-not $v){Done @{found=$false}}
    $d=@(Hyper-V\Get-VMHardDiskDrive -VM $v|ForEach-Object{$_.Path}|Where-Object{$_})
    if([string]$v.State -notin 'Off','Saved','FastSaved'){Hyper-V\Stop-VM -VM $v -TurnOff -Force}
    Hyper-V\Remove-VM -VM $v -Force;$script:Adopt=$null
    if(@(Hyper-V\Get-VM|Where-Object{$_.Id -eq $v.Id}).Count){Fail 'STILL_EXISTS'}
    $r=[IO.Path]::GetFullPath($P.vhd_path).TrimEnd('\')+'\';$x=@();$k=@()
    foreach($f in $d){
        if([IO.Path]::GetFullPath($f).StartsWith($r,[StringComparison]::OrdinalIgnoreCase)){
            try{Remove-Item -LiteralPath $f -Force;$x+=$f}catch{$k+=$f}
        }else{$k+=$f}
    }
    Done @{found=$true;removed=$x;kept=$k}
}
