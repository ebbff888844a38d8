# Exactly one checkpoint by exact name, else by Id (names may repeat; -Name takes wildcards).
function Find-Snap($v){
    $a=@(Hyper-V\Get-VMSnapshot -VM $v)
    $m=@($a|Where-Object{$_.Name -ceq $P.snapshot})
    if(-not $m.Count){$m=@($a|Where-Object{[string]$_.Id -eq $P.snapshot})}
    if(-not $m.Count){Fail 'SNAPSHOT_NOT_FOUND'}
    if($m.Count -gt 1){Fail 'SNAPSHOT_AMBIGUOUS' $m.Count}
    $m[0]
}
# A root checkpoint has no parent: [string] makes that '' (CloudStack's UI would show null as text).
function Snap-Row($s){[ordered]@{name=$s.Name;id=[string]$s.Id;created=$s.CreationTime.ToUniversalTime().ToString('s')+'Z';parent=[string]$s.ParentSnapshotName;type=[string]$s.SnapshotType}}
