# Stop on every error; silence the streams Windows PowerShell 5.1 would send as CLIXML.
$ErrorActionPreference='Stop';$ProgressPreference=$WarningPreference='SilentlyContinue'
# The one result line: HVX1:<invocation id>: + ASCII-only JSON (non-ASCII as \uXXXX, since
# stdout uses the OEM code page), then exit. The id (from the data) tells our line from any
# other output. 5.1 may wrap arrays as {"value":[..],"Count":n}; Rust unwraps.
function Emit($o,$c){[Console]::Out.Write("`nHVX1:$($P.id):"+[regex]::Replace((ConvertTo-Json -InputObject $o -Compress -Depth 5),'[^\x00-\x7F]',{'\u{0:x4}'-f[int][char]$args[0].Value})+"`n");exit $c}
function Fail($c,$d){Emit @{ok=$false;code=$c;detail=$d} 1}
function Done($o){$o.ok=$true;Emit $o 0}
