# Ours = exact name AND the ownership line create wrote into the Notes.
function Test-Ours($v){([string]$v.Notes -split '\r?\n') -ccontains ('cloudstack-vm-uuid='+$P.uuid)}
function State($v){[string](Hyper-V\Get-VM -Id $v.Id).State}
