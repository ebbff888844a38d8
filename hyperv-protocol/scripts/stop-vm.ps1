# Guest shutdown bounded by $P.wait seconds, then (if $P.fallback) power off. Returns how it stopped.
function Stop-Ours($v){
    $s=[string]$v.State
    if($s -in 'Off','Saved','FastSaved'){return 'none'}
    if($P.turnoff -or $s -ne 'Running'){Hyper-V\Stop-VM -VM $v -TurnOff -Force;return 'turnoff'}
    $j=Hyper-V\Stop-VM -VM $v -Force -AsJob;$e=$null
    if(Wait-Job $j -Timeout $P.wait){try{$null=Receive-Job $j;if($j.State -ne 'Completed'){$e=[string]$j.State}}catch{$e=$_.Exception.Message}}else{$e='timeout';Stop-Job $j}
    Remove-Job $j -Force
    if($null -eq $e){return 'graceful'}
    if(-not $P.fallback){Fail 'STOP_FAILED' $e}
    Hyper-V\Stop-VM -VM $v -TurnOff -Force;'turnoff'
}
