use anchor_lang::prelude::*;
declare_id!("5nnFdiGZBshPs7Cisvqqhu1hHz3xcBbFJ9297A4cSmZh");
#[program]
pub mod tolldns_miner_score {
    use super::*;
    pub fn noop(_ctx: Context<Noop>) -> Result<()> { Ok(()) }
}
#[derive(Accounts)]
pub struct Noop {}
