function Main{Need-Rights;$v=Need-Ours;$s=[string]$v.State
    if($s -eq 'Running'){Hyper-V\Suspend-VM -VM $v}elseif($s -ne 'Paused'){Fail 'INVALID_STATE' $s}
    Done @{before=$s;state=(State $v)}
}
