function Main{Need-Rights;$v=Need-Ours;$s=[string]$v.State
    if($s -eq 'Paused'){Hyper-V\Resume-VM -VM $v}elseif($s -ne 'Running'){Fail 'INVALID_STATE' $s}
    Done @{before=$s;state=(State $v)}
}
