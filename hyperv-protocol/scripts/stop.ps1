# A VM that is already gone counts as stopped (rights were proven first).
function Main{Need-Rights;$v=Find-Ours
    if(-not $v){Done @{found=$false;how='none'}}
    $h=Stop-Ours $v
    Done @{found=$true;how=$h;state=(State $v)}
}
