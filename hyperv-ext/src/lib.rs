//! Apache CloudStack Orchestrator extension for Hyper-V, over SSH and Windows PowerShell.

pub mod powershell;
