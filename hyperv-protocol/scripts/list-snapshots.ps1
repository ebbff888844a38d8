function Main{Need-Rights;$v=Need-Ours
    Done @{snapshots=@(Hyper-V\Get-VMSnapshot -VM $v|Sort-Object CreationTime|ForEach-Object{Snap-Row $_})}
}
