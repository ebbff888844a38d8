function Main{Need-Rights;$v=Need-Ours;$s=Find-Snap $v
    $r=Snap-Row $s
    Hyper-V\Remove-VMSnapshot -VMSnapshot $s -Confirm:$false
    Done @{snapshot=$r;state=(State $v)}
}
