# Without Hyper-V rights Get-VM answers "not found": prove the rights before trusting an empty answer.
function Need-Rights{try{$null=Hyper-V\Get-VMHost}catch{Fail 'ACCESS_DENIED' $_.Exception.Message}}
