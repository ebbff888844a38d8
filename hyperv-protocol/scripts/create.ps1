# Checks first (nothing changed yet), then each step pushes its undo; on failure the undos run
# in reverse order and the ORIGINAL error is reported, with any rollback errors beside it.
# What this run makes carries its invocation id ($P.id), so that the cleanup after a lost
# answer can prove it is this run's: the partial copy's name and the line
# cloudstack-create-id=<id> in the VM's Notes, beside the ownership line.
# Data: name uuid gen mem cpus sw (switch) disk tpl (template) iso size dir (VM folder)
#       sb (secure boot On/Off) sbt (secure boot template) nics ["MAC:VLAN", "MAC:" for
#       untagged]; terse because the data is base64 inside base64 and create is the longest
#       command line (each NIC costs its JSON length times 3.6 in characters).
# A missing template or ISO fails its step (disk, media) and rolls back like any other error.
# `?` is Where-Object (a built-in, read-only alias), `$d` the disk: every character here costs
# 2.7 on the command line.
function Main{Need-Rights
    if(@(Hyper-V\Get-VM|?{$_.Name -ceq $P.name}).Count){Fail 'VM_EXISTS'}
    $w=@(Hyper-V\Get-VMSwitch|?{$_.Name -ceq $P.sw})
    if($w.Count -ne 1){Fail 'SWITCH_NOT_FOUND' $w.Count}
    $d=$P.disk;if(Test-Path -LiteralPath $d){Fail 'DISK_EXISTS'}
    $u=@();$t='disk'
    try{
        # A copy cut off by the deadline leaves only this run's .partial file, which cleanup removes.
        # (-Destination is positional, in the -LiteralPath set too.)
        if($P.tpl){$q=$d+'.'+$P.id+'.partial';Copy-Item -LiteralPath $P.tpl $q;Move-Item -LiteralPath $q $d}
        else{$null=Hyper-V\New-VHD -Path $d -SizeBytes $P.size -Dynamic}
        $u+={Remove-Item -LiteralPath $d -Force}
        # Start-VM is the last step, so the VM is off whenever an undo runs. New-VM takes no
        # Notes: the VM is made as <name>.cs-create-<id> (this run's id), so that it is
        # provably this run's until the one Set-VM that marks it also names it. (A create of
        # this extension cannot make a second VM of the name meanwhile: its disk step fails
        # on this run's disk.)
        $t='vm';$v=Hyper-V\New-VM -Name ($P.name+'.cs-create-'+$P.id) -Generation $P.gen -MemoryStartupBytes $P.mem -VHDPath $d -Path $P.dir
        $u+={Hyper-V\Remove-VM -VM $v -Force}
        Hyper-V\Set-VM -VM $v -NewVMName $P.name -Notes ('cloudstack-vm-uuid='+$P.uuid+"`r`ncloudstack-create-id="+$P.id) -ProcessorCount $P.cpus
        $t='network';Hyper-V\Get-VMNetworkAdapter -VM $v|Hyper-V\Remove-VMNetworkAdapter;$i=0
        foreach($n in @($P.nics)){$m,$l=$n -split ':'
            $a=Hyper-V\Add-VMNetworkAdapter -VM $v -Name "nic$i" -StaticMacAddress $m -Passthru;$i++
            Hyper-V\Connect-VMNetworkAdapter -VMNetworkAdapter $a -VMSwitch $w[0]
            $g=@{Untagged=$true};if($l){$g=@{Access=$true;VlanId=$l}}
            Hyper-V\Set-VMNetworkAdapterVlan -VMNetworkAdapter $a @g
        }
        $t='media';if($P.iso){$c=Hyper-V\Add-VMDvdDrive -VM $v -Path $P.iso -Passthru}
        if($P.gen -eq 2){$f=@{VM=$v;EnableSecureBoot=$P.sb};if($P.sbt){$f.SecureBootTemplate=$P.sbt};if($c){$f.FirstBootDevice=$c};Hyper-V\Set-VMFirmware @f}
        $t='start';Hyper-V\Start-VM -VM $v
    }catch{
        $e=$_;$r=@();[array]::Reverse($u)
        foreach($b in $u){try{& $b}catch{$r+=$_.Exception.Message}}
        Emit @{ok=$false;code='CREATE_FAILED';step=$t;detail=$e.Exception.Message;rollback=$r} 1
    }
    Done @{id=[string]$v.Id}
}
