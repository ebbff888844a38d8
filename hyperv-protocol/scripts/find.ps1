# The UUID of the VM's ownership line, if it has one.
function Mark($v){if([string]$v.Notes -cmatch '(?m)^cloudstack-vm-uuid=(\S+)'){$Matches[1]}}
# The one VM that is ours, or $null when no VM has the name; never a wildcard match. In order:
# a VM of the name with our ownership line; one named <name>-<uuid> (upstream hyperv.py's
# documented naming) with it or with no ownership line at all; with $P.adopt (the operator's
# adopt_unmarked_vms), the only VM of the name when it has no ownership line. One found
# without our line is adopted: Done writes the line once the action succeeded.
# `?` is Where-Object, `%` ForEach-Object (built-in, read-only aliases): this fragment is in
# most scripts, and every character costs 2.7 on the command line.
function Find-Ours{
    $l=@(Hyper-V\Get-VM);$a=@($l|?{$_.Name -ceq $P.name});$o=@($a|?{Test-Ours $_})
    if(!$o){$b=@($l|?{$_.Name -ceq ($P.name+'-'+$P.uuid)});$o=@($b|?{!(Mark $_) -or (Test-Ours $_)})
        if(!$o -and $P.adopt -and $a.Count -eq 1 -and !(Mark $a[0])){$o=$a}
        if($o.Count -eq 1 -and !(Test-Ours $o[0])){$script:Adopt=$o[0]}}
    if($o.Count -gt 1){Fail 'VM_AMBIGUOUS' $o.Count}
    if($o){return $o[0]}
    # Not ours: whose they are (the UUIDs of their lines), or that none has a line.
    $n=@($a+$b);$m=@($n|%{Mark $_})
    if($n -and !$m){Fail 'UNMARKED' $n.Count}
    if($n){Emit @{ok=$false;code='NOT_OURS';detail=$n.Count;marked=$m} 1}
}
function Need-Ours{$v=Find-Ours;if(-not $v){Fail 'VM_NOT_FOUND'};$v}
# Replaces head.ps1's Done wherever VMs are found: a VM found without our line gets it (after
# its Notes) once the action succeeded; the answer says how that went (adopted: 'ok' or the
# error), and a failure to mark does not fail the action (the next one tries again).
function Done($o){$v=$script:Adopt;if($v){$o.adopted='ok';try{Hyper-V\Set-VM -VM $v -Notes (([string]$v.Notes).TrimEnd()+"`r`ncloudstack-vm-uuid="+$P.uuid).TrimStart()}catch{$o.adopted=$_.Exception.Message}};$o.ok=$true;Emit $o 0}
