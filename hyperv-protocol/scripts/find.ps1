# Ours = exact name AND the ownership line create wrote into the Notes.
function Test-Ours($v){([string]$v.Notes -split '\r?\n') -ccontains ('cloudstack-vm-uuid='+$P.uuid)}
# The one VM that is ours, or $null when no VM has the name; never a wildcard match.
function Find-Ours{
    $a=@(Hyper-V\Get-VM|Where-Object{$_.Name -ceq $P.name})
    $o=@($a|Where-Object{Test-Ours $_})
    if($o.Count -gt 1){Fail 'VM_AMBIGUOUS' $o.Count}
    if($o.Count){return $o[0]}
    if($a.Count){Fail 'NOT_OURS' $a.Count}
}
function Need-Ours{$v=Find-Ours;if(-not $v){Fail 'VM_NOT_FOUND'};$v}
function State($v){[string](Hyper-V\Get-VM -Id $v.Id).State}
