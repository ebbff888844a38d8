function Main{Need-Rights;$v=Find-Ours
    if(-not $v){Done @{found=$false}}
    Done @{found=$true;state=[string]$v.State}
}
