# Hyper-V allows duplicate checkpoint names; we refuse them so names stay usable.
function Main{Need-Rights;$v=Need-Ours
    if(@(Hyper-V\Get-VMSnapshot -VM $v|Where-Object{$_.Name -ceq $P.snapshot}).Count){Fail 'SNAPSHOT_EXISTS'}
    $s=Hyper-V\Checkpoint-VM -VM $v -SnapshotName $P.snapshot -Passthru -Confirm:$false
    Done @{snapshot=(Snap-Row $s);state=(State $v)}
}
