//! The simulator's durable state: accounts (passwords, OAuth tokens, impersonation grants) and
//! mailboxes. This is what a snapshot file holds; subscriptions, faults and the call log are
//! runtime only (Exchange forgets subscriptions on restart too). Owns who may act on which
//! mailbox; never HTTP or XML.

use super::mailbox::{Counters, Mailbox, TreeError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};

/// An account that can authenticate: a person with a mailbox, or a service account.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Account {
    /// `None`: cannot sign in with Basic (e.g. a mailbox created on its own).
    pub password: Option<String>,
    /// The account's own mailbox.
    pub mailbox: Option<u32>,
    /// Mailboxes (lowercase addresses) it may impersonate.
    pub impersonate: BTreeSet<String>,
    /// May impersonate every mailbox (an unscoped ApplicationImpersonation role).
    pub impersonate_all: bool,
    /// Mailboxes (lowercase addresses) it may open as a delegate (FullAccess).
    #[serde(default)]
    pub full_access: BTreeSet<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct State {
    /// By lowercase address or name.
    pub accounts: HashMap<String, Account>,
    /// OAuth bearer token → account.
    pub tokens: HashMap<String, String>,
    /// OAuth bearer token → the scope it was issued for (tokens from the token endpoint).
    #[serde(default)]
    pub token_scopes: HashMap<String, String>,
    /// OAuth client id → (client secret, account): the token endpoint's app registrations.
    #[serde(default)]
    pub oauth_clients: HashMap<String, (String, String)>,
    /// OAuth client id → the application permissions its tokens carry (`roles`); an app not
    /// listed has `Mail.ReadWrite`.
    #[serde(default)]
    pub app_roles: HashMap<String, Vec<String>>,
    /// OAuth bearer token → the application permissions it carries.
    #[serde(default)]
    pub token_roles: HashMap<String, Vec<String>>,
    pub mailboxes: HashMap<u32, Mailbox>,
    /// Lowercase SMTP address → mailbox number.
    pub addresses: HashMap<String, u32>,
    pub counters: Counters,
    next_mailbox: u32,
}

/// Why a control or authentication step failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("account {0:?} does not exist; create it first")]
    NoAccount(String),
    #[error("mailbox {0:?} does not exist; create it first")]
    NoMailbox(String),
    #[error("{0:?} already exists")]
    Exists(String),
    #[error("mailbox {mailbox}: {source}")]
    Tree {
        mailbox: String,
        #[source]
        source: TreeError,
    },
}

pub fn key(address: &str) -> String {
    address.trim().to_ascii_lowercase()
}

impl State {
    fn add_mailbox(&mut self, address: &str) -> Result<u32, StateError> {
        let k = key(address);
        if self.addresses.contains_key(&k) {
            return Err(StateError::Exists(address.to_owned()));
        }
        self.next_mailbox += 1;
        let n = self.next_mailbox;
        let mb = Mailbox::new(n, address.trim(), &mut self.counters);
        self.mailboxes.insert(n, mb);
        self.addresses.insert(k, n);
        Ok(n)
    }

    /// A person: an account with a password and a mailbox of the same address.
    pub fn create_user(&mut self, address: &str, password: &str) -> Result<(), StateError> {
        if self.accounts.contains_key(&key(address)) {
            return Err(StateError::Exists(address.to_owned()));
        }
        let n = self.add_mailbox(address)?;
        self.accounts.insert(
            key(address),
            Account {
                password: Some(password.to_owned()),
                mailbox: Some(n),
                ..Account::default()
            },
        );
        Ok(())
    }

    /// A mailbox whose owner never signs in here (reached through impersonation).
    pub fn create_mailbox(&mut self, address: &str) -> Result<(), StateError> {
        let n = self.add_mailbox(address)?;
        self.accounts.entry(key(address)).or_default().mailbox = Some(n);
        Ok(())
    }

    /// A service account: a password and no mailbox.
    pub fn create_service_account(&mut self, name: &str, password: &str) -> Result<(), StateError> {
        if self.accounts.contains_key(&key(name)) {
            return Err(StateError::Exists(name.to_owned()));
        }
        self.accounts.insert(
            key(name),
            Account {
                password: Some(password.to_owned()),
                ..Account::default()
            },
        );
        Ok(())
    }

    pub fn account_mut(&mut self, name: &str) -> Result<&mut Account, StateError> {
        self.accounts
            .get_mut(&key(name))
            .ok_or_else(|| StateError::NoAccount(name.to_owned()))
    }

    pub fn mailbox_number(&self, address: &str) -> Result<u32, StateError> {
        self.addresses
            .get(&key(address))
            .copied()
            .ok_or_else(|| StateError::NoMailbox(address.to_owned()))
    }

    /// The mailbox and the shared counters, borrowed together for a change.
    pub fn mailbox_mut(
        &mut self,
        address: &str,
    ) -> Result<(&mut Mailbox, &mut Counters), StateError> {
        let n = self.mailbox_number(address)?;
        let mb = self
            .mailboxes
            .get_mut(&n)
            .ok_or_else(|| StateError::NoMailbox(address.to_owned()))?;
        Ok((mb, &mut self.counters))
    }

    pub fn mailbox(&self, address: &str) -> Result<&Mailbox, StateError> {
        let n = self.mailbox_number(address)?;
        self.mailboxes
            .get(&n)
            .ok_or_else(|| StateError::NoMailbox(address.to_owned()))
    }

    /// The account a Basic `user:password` pair names, if the password matches.
    pub fn basic(&self, user: &str, password: &str) -> Option<String> {
        let k = key(user);
        let a = self.accounts.get(&k)?;
        (a.password.as_deref() == Some(password)).then_some(k)
    }

    pub fn bearer(&self, token: &str) -> Option<String> {
        self.tokens.get(token).cloned()
    }
}

/// Wraps a tree error with the mailbox it happened in.
pub fn tree(mailbox: &str) -> impl FnOnce(TreeError) -> StateError + '_ {
    move |source| StateError::Tree {
        mailbox: mailbox.to_owned(),
        source,
    }
}
