# Restoring replaces the running state anyway: power off first. The resulting state depends
# on the checkpoint type (a production checkpoint leaves the VM Off), so report it.
function Main{Need-Rights;$v=Need-Ours;$s=Find-Snap $v
    if([string]$v.State -notin 'Off','Saved','FastSaved'){Hyper-V\Stop-VM -VM $v -TurnOff -Force}
    Hyper-V\Restore-VMSnapshot -VMSnapshot $s -Confirm:$false
    Done @{snapshot=(Snap-Row $s);state=(State $v)}
}
