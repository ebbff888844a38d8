# Graceful stop + start rather than Restart-VM, which is a hard reset.
function Main{Need-Rights;$v=Need-Ours;$s=[string]$v.State
    if($s -ne 'Running'){Fail 'INVALID_STATE' $s}
    $h=Stop-Ours $v
    Hyper-V\Start-VM -VM $v
    Done @{how=$h;state=(State $v)}
}
