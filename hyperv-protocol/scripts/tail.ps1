# The operation's data: base64 of UTF-8 JSON, the only part of the script that varies.
try{
    $P=[Text.Encoding]::UTF8.GetString([Convert]::FromBase64String(__HVX_DATA__))|ConvertFrom-Json
    Main
}catch{Emit @{ok=$false;code='PS_ERROR';detail=$_.Exception.Message;fqid=[string]$_.FullyQualifiedErrorId} 1}
