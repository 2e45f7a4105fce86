//! The control API: the same operations as Rust methods on [`SimControl`] (in-process tests,
//! the demo, the benchmarks) and as JSON over HTTP under `/_sim/<command>` on the simulator's
//! listener (`foldertrack sim`). Users and mailboxes, impersonation grants, tokens, folders,
//! messages "as a person would" (deliver, drag to another folder, categorise, delete), lookups,
//! fault injection, the call log and statistics. Owns the commands; the state rules live in
//! `state.rs` and `mailbox.rs`.

use super::calls::{CallRecord, Stats};
use super::faults::FaultRule;
use super::ids;
use super::mailbox::{FolderHappening, Happened};
use super::message::{MessageView, NewMessage};
use super::notify::Ending;
use super::respond::ResponseStyle;
use super::shared::{Error, Inner, Shared};
use super::state::{Account, StateError, key, tree};
use crate::ews::ResponseCode;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::Arc;

/// The Rust control API of a running simulator. Cheap to clone.
#[derive(Clone)]
pub struct SimControl {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for SimControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SimControl")
    }
}

/// What [`SimControl::deliver`] returns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivered {
    pub item_id: String,
    pub internet_message_id: String,
}

impl SimControl {
    fn read<T>(&self, f: impl FnOnce(&Inner) -> Result<T, StateError>) -> Result<T, Error> {
        let inner = self.shared.lock();
        f(&inner).map_err(Error::from)
    }

    /// Runs a change, publishes what happened to subscriptions, schedules a snapshot.
    fn change<T>(
        &self,
        f: impl FnOnce(&mut Inner) -> Result<(T, Option<(u32, Vec<Happened>)>), StateError>,
    ) -> Result<T, Error> {
        let mut inner = self.shared.lock();
        let (value, happened) = f(&mut inner)?;
        if let Some((mailbox, what)) = happened {
            let now = jiff::Timestamp::now().to_string();
            let Inner { state, subs, .. } = &mut *inner;
            if let Some(mb) = state.mailboxes.get(&mailbox) {
                subs.publish(mb, &what, &now);
            }
        }
        inner.changed();
        drop(inner);
        self.shared.persist_wake.notify_one();
        Ok(value)
    }

    /// A person: an account with a password and a mailbox at `address`.
    pub fn create_user(&self, address: &str, password: &str) -> Result<(), Error> {
        self.change(|i| i.state.create_user(address, password).map(|()| ((), None)))
    }

    /// A mailbox reached through impersonation only (its owner has no password here).
    pub fn create_mailbox(&self, address: &str) -> Result<(), Error> {
        self.change(|i| i.state.create_mailbox(address).map(|()| ((), None)))
    }

    /// An account with a password and no mailbox (what foldertrack signs in as).
    pub fn create_service_account(&self, name: &str, password: &str) -> Result<(), Error> {
        self.change(|i| {
            i.state
                .create_service_account(name, password)
                .map(|()| ((), None))
        })
    }

    /// Changes an account's password (the old one then gets HTTP 401).
    pub fn set_password(&self, account: &str, password: &str) -> Result<(), Error> {
        self.change(|i| {
            i.state.account_mut(account)?.password = Some(password.to_owned());
            Ok(((), None))
        })
    }

    /// Lets `account` impersonate `mailbox`.
    pub fn grant_impersonation(&self, account: &str, mailbox: &str) -> Result<(), Error> {
        self.grant(account, mailbox, |a| &mut a.impersonate)
    }

    /// Adds an existing mailbox to one of the account's grant lists.
    fn grant(
        &self,
        account: &str,
        mailbox: &str,
        list: impl FnOnce(&mut Account) -> &mut BTreeSet<String>,
    ) -> Result<(), Error> {
        self.change(|i| {
            i.state.mailbox_number(mailbox)?;
            list(i.state.account_mut(account)?).insert(key(mailbox));
            Ok(((), None))
        })
    }

    /// Withdraws a grant (and the "every mailbox" grant, if any).
    pub fn revoke_impersonation(&self, account: &str, mailbox: &str) -> Result<(), Error> {
        self.change(|i| {
            let a = i.state.account_mut(account)?;
            a.impersonate.remove(&key(mailbox));
            a.impersonate_all = false;
            Ok(((), None))
        })
    }

    /// Lets `account` open `mailbox` as a delegate (FullAccess): folders it names by address
    /// (`DistinguishedFolderId/Mailbox`) or by id, and their items.
    pub fn grant_full_access(&self, account: &str, mailbox: &str) -> Result<(), Error> {
        self.grant(account, mailbox, |a| &mut a.full_access)
    }

    /// Withdraws a FullAccess grant: the mailbox's folders are then not found for `account`.
    pub fn revoke_full_access(&self, account: &str, mailbox: &str) -> Result<(), Error> {
        self.change(|i| {
            i.state
                .account_mut(account)?
                .full_access
                .remove(&key(mailbox));
            Ok(((), None))
        })
    }

    /// Lets `account` impersonate every mailbox, or stops it.
    pub fn impersonate_all(&self, account: &str, allowed: bool) -> Result<(), Error> {
        self.change(|i| {
            i.state.account_mut(account)?.impersonate_all = allowed;
            Ok(((), None))
        })
    }

    /// Accepts `Authorization: Bearer <token>` as `account`.
    pub fn add_token(&self, token: &str, account: &str) -> Result<(), Error> {
        self.change(|i| {
            i.state.account_mut(account)?;
            i.state.tokens.insert(token.to_owned(), key(account));
            Ok(((), None))
        })
    }

    /// Registers an app for the token endpoint (`POST /{tenant}/oauth2/v2.0/token`, client
    /// credentials): each token it issues acts as `account`.
    pub fn add_oauth_client(
        &self,
        client_id: &str,
        secret: &str,
        account: &str,
    ) -> Result<(), Error> {
        self.change(|i| {
            i.state.account_mut(account)?;
            i.state
                .oauth_clients
                .insert(client_id.to_owned(), (secret.to_owned(), key(account)));
            Ok(((), None))
        })
    }

    /// The application permissions (`roles` claim) of the tokens app `client_id` gets from now
    /// on, e.g. `["Mail.Read"]`; Graph refuses what they do not allow with 403.
    pub fn set_app_roles(&self, client_id: &str, roles: &[&str]) -> Result<(), Error> {
        self.change(|i| {
            i.state.app_roles.insert(
                client_id.to_owned(),
                roles.iter().map(|r| (*r).to_owned()).collect(),
            );
            Ok(((), None))
        })
    }

    /// Every bearer token accepted now (added, or issued by the token endpoint).
    pub fn tokens(&self) -> Vec<String> {
        self.read(|i| Ok(i.state.tokens.keys().cloned().collect()))
            .unwrap_or_default()
    }

    pub fn revoke_token(&self, token: &str) -> Result<(), Error> {
        self.change(|i| {
            i.state.tokens.remove(token);
            Ok(((), None))
        })
    }

    /// Creates every missing folder on `path` (e.g. `Inbox/Customers/Contoso`); returns the
    /// FolderId of the last one.
    pub fn create_folder(&self, mailbox: &str, path: &str) -> Result<String, Error> {
        self.change(|i| {
            let (mb, c) = i.state.mailbox_mut(mailbox)?;
            // Each folder of the path made now is an event in its parent.
            let prefixes = (path.match_indices('/').map(|(at, _)| &path[..at])).chain([path]);
            let missing: Vec<&str> = prefixes.filter(|p| mb.folder_by_path(p).is_err()).collect();
            let folder = mb.create_folder(path, c).map_err(tree(mailbox))?;
            let happened = (missing.iter())
                .filter_map(|p| mb.folder_by_path(p).ok())
                .map(|f| Happened::FolderChanged {
                    mailbox: mb.number,
                    folder: f,
                    how: FolderHappening::Created,
                })
                .collect();
            Ok((mb.folder_id(folder), Some((mb.number, happened))))
        })
    }

    pub fn rename_folder(
        &self,
        mailbox: &str,
        path: &str,
        new_name: &str,
    ) -> Result<String, Error> {
        self.folder_change(mailbox, FolderHappening::Renamed, |mb, c| {
            mb.rename_folder(path, new_name, c)
        })
    }

    /// Moves the folder at `path` under `new_parent` (a path; `""` is the top of the mailbox).
    pub fn move_folder(
        &self,
        mailbox: &str,
        path: &str,
        new_parent: &str,
    ) -> Result<String, Error> {
        let from = self.read(|i| {
            let mb = i.state.mailbox(mailbox)?;
            let f = mb.folder_by_path(path).map_err(tree(mailbox))?;
            Ok(mb.folders.get(&f).and_then(|f| f.parent).unwrap_or(f))
        })?;
        self.folder_change(mailbox, FolderHappening::Moved { from }, |mb, c| {
            mb.move_folder(path, new_parent, c)
        })
    }

    /// Deletes the folder, its subfolders and their messages.
    pub fn delete_folder(&self, mailbox: &str, path: &str) -> Result<(), Error> {
        self.change(|i| {
            let (mb, c) = i.state.mailbox_mut(mailbox)?;
            mb.delete_folder(path, c).map_err(tree(mailbox))?;
            Ok(((), None))
        })
    }

    fn folder_change(
        &self,
        mailbox: &str,
        how: FolderHappening,
        f: impl FnOnce(
            &mut super::mailbox::Mailbox,
            &mut super::mailbox::Counters,
        ) -> Result<u32, super::mailbox::TreeError>,
    ) -> Result<String, Error> {
        self.change(|i| {
            let (mb, c) = i.state.mailbox_mut(mailbox)?;
            let folder = f(mb, c).map_err(tree(mailbox))?;
            let happened = Happened::FolderChanged {
                mailbox: mb.number,
                folder,
                how,
            };
            Ok((mb.folder_id(folder), Some((mb.number, vec![happened]))))
        })
    }

    /// The FolderId of the folder at `path`.
    pub fn folder_id(&self, mailbox: &str, path: &str) -> Result<String, Error> {
        self.read(|i| {
            let mb = i.state.mailbox(mailbox)?;
            let f = mb.folder_by_path(path).map_err(tree(mailbox))?;
            Ok(mb.folder_id(f))
        })
    }

    /// The folder paths of a mailbox, below the top of the information store.
    pub fn folders(&self, mailbox: &str) -> Result<Vec<String>, Error> {
        self.read(|i| {
            let mb = i.state.mailbox(mailbox)?;
            let top = mb
                .distinguished(crate::ews::DistinguishedFolder::MsgFolderRoot)
                .unwrap_or(0);
            Ok(mb
                .descendants(top)
                .into_iter()
                .map(|f| mb.path(f))
                .collect())
        })
    }

    /// New mail arrives in `folder` (a path such as `Inbox`).
    pub fn deliver(
        &self,
        mailbox: &str,
        folder: &str,
        message: &NewMessage,
    ) -> Result<Delivered, Error> {
        let now = jiff::Timestamp::now().as_second();
        self.change(|i| {
            let (mb, c) = i.state.mailbox_mut(mailbox)?;
            let f = mb.folder_by_path(folder).map_err(tree(mailbox))?;
            let (k, imid) = mb.deliver(f, message, now, c).map_err(tree(mailbox))?;
            let happened = Happened::Created {
                item: k,
                new_mail: true,
            };
            Ok((
                Delivered {
                    item_id: ids::item_id(k),
                    internet_message_id: imid,
                },
                Some((mb.number, vec![happened])),
            ))
        })
    }

    fn item_change<T>(
        &self,
        mailbox: &str,
        item_id: &str,
        f: impl FnOnce(
            &mut super::mailbox::Mailbox,
            ids::ItemKey,
            &mut super::mailbox::Counters,
        ) -> Result<(T, Happened), super::mailbox::TreeError>,
    ) -> Result<T, Error> {
        self.change(|i| {
            let (mb, c) = i.state.mailbox_mut(mailbox)?;
            let no_item = || tree(mailbox)(super::mailbox::TreeError::NoItem(item_id.to_owned()));
            let (key, _) = mb.find_item(item_id).ok_or_else(no_item)?;
            let (value, happened) = f(mb, key, c).map_err(tree(mailbox))?;
            Ok((value, Some((mb.number, vec![happened]))))
        })
    }

    /// A person drags the message into the folder at `to`: it gets a NEW ItemId, returned.
    pub fn move_message(&self, mailbox: &str, item_id: &str, to: &str) -> Result<String, Error> {
        self.item_change(mailbox, item_id, |mb, key, c| {
            let to = mb.folder_by_path(to)?;
            let new = mb.move_item(key, to, c)?;
            Ok((
                ids::item_id(new),
                Happened::Moved {
                    item: new,
                    old: key,
                },
            ))
        })
    }

    /// A person sets the message's categories; returns its new ChangeKey.
    pub fn set_categories(
        &self,
        mailbox: &str,
        item_id: &str,
        categories: &[String],
    ) -> Result<String, Error> {
        self.item_change(mailbox, item_id, |mb, key, c| {
            mb.modify(key, c, |m| {
                m.extras_mut().categories = categories.to_vec();
            })?;
            let ck = mb
                .item(key)
                .map(|m| mb.item_change_key(key, m))
                .unwrap_or_default();
            Ok((ck, Happened::Modified { item: key }))
        })
    }

    /// A person reads (or marks unread) the message.
    pub fn mark_read(&self, mailbox: &str, item_id: &str, read: bool) -> Result<(), Error> {
        self.item_change(mailbox, item_id, |mb, key, c| {
            mb.modify(key, c, |m| m.is_read = read)?;
            Ok(((), Happened::Modified { item: key }))
        })
    }

    /// A person deletes the message for good.
    pub fn delete_message(&self, mailbox: &str, item_id: &str) -> Result<(), Error> {
        self.item_change(mailbox, item_id, |mb, key, c| {
            mb.delete_item(key, c)?;
            Ok(((), Happened::Deleted { item: key }))
        })
    }

    /// The messages in the folder at `path`, oldest first.
    pub fn messages(&self, mailbox: &str, path: &str) -> Result<Vec<MessageView>, Error> {
        self.read(|i| {
            let mb = i.state.mailbox(mailbox)?;
            let f = mb.folder_by_path(path).map_err(tree(mailbox))?;
            let mut items: Vec<_> = mb
                .folders
                .get(&f)
                .map(|x| x.items.iter().map(|(n, m)| (*n, m)).collect())
                .unwrap_or_default();
            items.sort_by_key(|(n, _)| *n);
            Ok(items
                .into_iter()
                .map(|(n, m)| mb.view(mb.item_key(f, n), m))
                .collect())
        })
    }

    /// One message by its current ItemId or its Graph immutable id.
    pub fn message(&self, mailbox: &str, item_id: &str) -> Result<MessageView, Error> {
        self.read(|i| {
            let mb = i.state.mailbox(mailbox)?;
            mb.find_item(item_id)
                .map(|(k, m)| mb.view(k, m))
                .ok_or_else(|| tree(mailbox)(super::mailbox::TreeError::NoItem(item_id.to_owned())))
        })
    }

    /// Every message with this InternetMessageId, in every mailbox and folder.
    pub fn find_by_internet_message_id(&self, internet_message_id: &str) -> Vec<MessageView> {
        let inner = self.shared.lock();
        let mut out: Vec<MessageView> = inner
            .state
            .mailboxes
            .values()
            .flat_map(|mb| {
                mb.all_items()
                    .filter(|(_, m)| m.envelope.read().internet_message_id == internet_message_id)
                    .map(|(k, m)| mb.view(k, m))
                    .collect::<Vec<_>>()
            })
            .collect();
        out.sort_by(|a, b| (&a.mailbox, &a.folder).cmp(&(&b.mailbox, &b.folder)));
        out
    }

    pub fn add_fault(&self, rule: FaultRule) {
        self.shared.lock().faults.add(rule);
    }

    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    pub fn faults(&self) -> Vec<FaultRule> {
        self.shared.lock().faults.list()
    }

    /// The call log, oldest first (the last 100,000 calls).
    pub fn calls(&self) -> Vec<CallRecord> {
        self.shared.lock().calls.log()
    }

    pub fn stats(&self) -> Stats {
        self.shared.lock().calls.stats()
    }

    /// Forgets the call log and statistics.
    pub fn reset_calls(&self) {
        self.shared.lock().calls.reset();
    }

    /// Makes GetItem answer `code` for this item alone, as for a corrupt item; `None` makes it
    /// readable again.
    pub fn set_unreadable(&self, item_id: &str, code: Option<ResponseCode>) {
        let mut inner = self.shared.lock();
        match code {
            Some(code) => inner.unreadable.insert(item_id.to_owned(), code),
            None => inner.unreadable.remove(item_id),
        };
    }

    /// [`Self::set_unreadable`] with the code's name, as the JSON control API gives it.
    fn set_unreadable_as(&self, item_id: &str, code: Option<String>) {
        self.set_unreadable(item_id, code.as_deref().map(ResponseCode::parse));
    }

    pub fn set_style(&self, style: ResponseStyle) {
        self.shared.lock().style = style;
    }

    /// Expires every Graph delta token of the mailbox, as Exchange Online does after a while or
    /// after a mailbox move: the next delta request with one answers 410 SyncStateNotFound.
    pub fn expire_delta_tokens(&self, mailbox: &str) -> Result<(), Error> {
        self.change(|i| {
            let (mb, _) = i.state.mailbox_mut(mailbox)?;
            mb.delta_epoch += 1;
            Ok(((), None))
        })
    }

    /// The ids of the mailbox's live EWS notification subscriptions (pull and streaming).
    pub fn subscriptions(&self, mailbox: &str) -> Result<Vec<String>, Error> {
        let inner = self.shared.lock();
        let number = inner.state.mailbox_number(mailbox)?;
        let now = std::time::Instant::now();
        let mut live: Vec<String> = (inner.subs.subs.iter())
            .filter(|(_, s)| s.mailbox == number && !s.expired(now))
            .map(|(n, _)| super::ids::subscription_id(*n))
            .collect();
        live.sort();
        Ok(live)
    }

    /// Ends every notification subscription of the mailbox, as Exchange does when one lapses:
    /// a streaming connection serving one says ErrorSubscriptionNotFound for it. Returns how
    /// many there were.
    pub fn expire_subscriptions(&self, mailbox: &str) -> Result<usize, Error> {
        self.end_subscriptions(mailbox, Ending::Lapsed)
    }

    /// Loses the events of every subscription of the mailbox, as Exchange does when their queue
    /// overflows or a server fails over: a streaming connection serving one says
    /// ErrorMissedNotificationEvents for it, and it is gone (the client must re-create it).
    /// Returns how many there were.
    pub fn miss_events(&self, mailbox: &str) -> Result<usize, Error> {
        self.end_subscriptions(mailbox, Ending::MissedEvents)
    }

    fn end_subscriptions(&self, mailbox: &str, why: Ending) -> Result<usize, Error> {
        let mut inner = self.shared.lock();
        let number = inner.state.mailbox_number(mailbox)?;
        Ok(inner.subs.end(number, why))
    }

    /// Breaks every open streaming connection mid-stream (a network failure or a restarted
    /// front end): the client reads an error instead of the next envelope.
    pub fn drop_streams(&self) {
        self.shared.lock().subs.drop_streams();
    }

    /// Sends a Graph lifecycle event (`reauthorizationRequired`, `subscriptionRemoved`,
    /// `missed`) for every Graph subscription on the mailbox, to its lifecycle URL;
    /// `subscriptionRemoved` also ends them. Returns how many there were.
    pub fn graph_lifecycle(&self, mailbox: &str, event: &str) -> Result<usize, Error> {
        let event = crate::graph::subscription::Lifecycle::parse(event).ok_or_else(|| {
            StateError::Tree {
                mailbox: mailbox.to_owned(),
                source: super::mailbox::TreeError::Invalid(format!(
                    "{event:?} is not a lifecycle event; use reauthorizationRequired, subscriptionRemoved or missed"
                )),
            }
        })?;
        let mut inner = self.shared.lock();
        let number = inner.state.mailbox_number(mailbox)?;
        Ok(inner.subs.graph.lifecycle(number, event))
    }

    /// Loses the next `count` Graph change notifications of the mailbox (as Graph may drop
    /// them); a `missed` lifecycle event is then the honest thing to send.
    pub fn drop_graph_notifications(&self, mailbox: &str, count: u32) -> Result<(), Error> {
        let mut inner = self.shared.lock();
        let number = inner.state.mailbox_number(mailbox)?;
        inner.subs.graph.drop_next(number, count);
        Ok(())
    }

    /// Grants Graph subscriptions at most `secs` of life from now on (`None`: what they ask,
    /// up to Graph's maximum), so a test sees renewals and expiries.
    pub fn set_graph_subscription_lifetime(&self, secs: Option<u64>) {
        self.shared.lock().subs.graph.lifetime_cap = secs.map(std::time::Duration::from_secs);
    }

    /// The live Graph subscriptions on the mailbox's folders.
    pub fn graph_subscriptions(
        &self,
        mailbox: &str,
    ) -> Result<Vec<super::graph_notify::SubscriptionView>, Error> {
        let mut inner = self.shared.lock();
        let Inner { state, subs, .. } = &mut *inner;
        let (mb, _) = state.mailbox_mut(mailbox)?;
        Ok(subs.graph.views(mb))
    }

    pub fn set_concurrency_limit(&self, limit: u32) {
        self.shared.lock().concurrency_limit = limit;
    }

    /// Open streaming connections per budget (an impersonated mailbox, or the account).
    pub fn set_hanging_connection_limit(&self, limit: u32) {
        self.shared.lock().hanging_connection_limit = limit;
    }

    /// Whether the server offers streaming notifications (see [`super::SimOptions::streaming`]).
    pub fn set_streaming(&self, enabled: bool) {
        self.shared.lock().streaming = enabled;
    }

    /// Writes the snapshot file now (when the simulator has one).
    pub fn save(&self) -> Result<(), Error> {
        match &self.shared.options.persist {
            Some(path) => super::persist::write_now(&self.shared, path),
            None => Ok(()),
        }
    }
}

/// A control command as JSON: `{"command": "...", ...fields}`; over HTTP the command is the
/// last path segment and the body holds the fields.
#[derive(Debug, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case", deny_unknown_fields)]
enum Command {
    CreateUser {
        address: String,
        password: String,
    },
    CreateMailbox {
        address: String,
    },
    CreateServiceAccount {
        name: String,
        password: String,
    },
    SetPassword {
        account: String,
        password: String,
    },
    GrantImpersonation(Grant),
    RevokeImpersonation(Grant),
    ImpersonateAll {
        account: String,
        allowed: bool,
    },
    GrantFullAccess(Grant),
    RevokeFullAccess(Grant),
    AddToken {
        token: String,
        account: String,
    },
    RevokeToken {
        token: String,
    },
    AddOauthClient {
        client_id: String,
        secret: String,
        account: String,
    },
    SetAppRoles {
        client_id: String,
        roles: Vec<String>,
    },
    CreateFolder {
        mailbox: String,
        path: String,
    },
    RenameFolder {
        mailbox: String,
        path: String,
        new_name: String,
    },
    MoveFolder {
        mailbox: String,
        path: String,
        new_parent: String,
    },
    DeleteFolder {
        mailbox: String,
        path: String,
    },
    FolderId {
        mailbox: String,
        path: String,
    },
    Folders {
        mailbox: String,
    },
    Deliver {
        mailbox: String,
        folder: String,
        message: Box<NewMessage>,
    },
    MoveMessage {
        mailbox: String,
        item_id: String,
        to: String,
    },
    SetCategories {
        mailbox: String,
        item_id: String,
        categories: Vec<String>,
    },
    MarkRead {
        mailbox: String,
        item_id: String,
        read: bool,
    },
    DeleteMessage {
        mailbox: String,
        item_id: String,
    },
    Messages {
        mailbox: String,
        folder: String,
    },
    Message {
        mailbox: String,
        item_id: String,
    },
    FindByInternetMessageId {
        internet_message_id: String,
    },
    AddFault {
        rule: FaultRule,
    },
    ClearFaults {},
    Faults {},
    Calls {},
    Stats {},
    ResetCalls {},
    SetStyle {
        style: ResponseStyle,
    },
    SetConcurrencyLimit {
        limit: u32,
    },
    SetHangingConnectionLimit {
        limit: u32,
    },
    SetStreaming {
        enabled: bool,
    },
    ExpireDeltaTokens {
        mailbox: String,
    },
    SetUnreadable {
        item_id: String,
        #[serde(default)]
        code: Option<String>,
    },
    Subscriptions {
        mailbox: String,
    },
    ExpireSubscriptions {
        mailbox: String,
    },
    MissEvents {
        mailbox: String,
    },
    DropStreams {},
    GraphLifecycle {
        mailbox: String,
        event: String,
    },
    DropGraphNotifications {
        mailbox: String,
        count: u32,
    },
    SetGraphSubscriptionLifetime {
        #[serde(default)]
        secs: Option<u64>,
    },
    GraphSubscriptions {
        mailbox: String,
    },
    Save {},
}

/// The fields of the commands that grant or withdraw an account's access to a mailbox.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Grant {
    account: String,
    mailbox: String,
}

fn json<T: Serialize>(value: T) -> Result<serde_json::Value, Error> {
    Ok(serde_json::to_value(value).unwrap_or(serde_json::Value::Null))
}

/// Runs a command that answers nothing (JSON `null`).
fn done(f: impl FnOnce()) -> Result<serde_json::Value, Error> {
    f();
    Ok(serde_json::Value::Null)
}

/// `{"folder_id": ...}`, what the folder commands answer.
fn folder_id(id: Result<String, Error>) -> Result<serde_json::Value, Error> {
    named("folder_id", id)
}

/// `{"<key>": value}`.
fn named(key: &str, value: Result<String, Error>) -> Result<serde_json::Value, Error> {
    Ok(serde_json::json!({ key: value? }))
}

impl SimControl {
    fn run(&self, command: Command) -> Result<serde_json::Value, Error> {
        use Command as C;
        match command {
            C::CreateUser { address, password } => json(self.create_user(&address, &password)?),
            C::CreateMailbox { address } => json(self.create_mailbox(&address)?),
            C::CreateServiceAccount { name, password } => {
                json(self.create_service_account(&name, &password)?)
            }
            C::SetPassword { account, password } => json(self.set_password(&account, &password)?),
            C::GrantImpersonation(g) => json(self.grant_impersonation(&g.account, &g.mailbox)?),
            C::RevokeImpersonation(g) => json(self.revoke_impersonation(&g.account, &g.mailbox)?),
            C::ImpersonateAll { account, allowed } => {
                json(self.impersonate_all(&account, allowed)?)
            }
            C::GrantFullAccess(g) => json(self.grant_full_access(&g.account, &g.mailbox)?),
            C::RevokeFullAccess(g) => json(self.revoke_full_access(&g.account, &g.mailbox)?),
            C::AddToken { token, account } => json(self.add_token(&token, &account)?),
            C::RevokeToken { token } => json(self.revoke_token(&token)?),
            C::AddOauthClient {
                client_id,
                secret,
                account,
            } => json(self.add_oauth_client(&client_id, &secret, &account)?),
            C::SetAppRoles { client_id, roles } => {
                let roles: Vec<&str> = roles.iter().map(String::as_str).collect();
                json(self.set_app_roles(&client_id, &roles)?)
            }
            C::CreateFolder { mailbox, path } => folder_id(self.create_folder(&mailbox, &path)),
            C::RenameFolder {
                mailbox,
                path,
                new_name,
            } => folder_id(self.rename_folder(&mailbox, &path, &new_name)),
            C::MoveFolder {
                mailbox,
                path,
                new_parent,
            } => folder_id(self.move_folder(&mailbox, &path, &new_parent)),
            C::DeleteFolder { mailbox, path } => json(self.delete_folder(&mailbox, &path)?),
            C::FolderId { mailbox, path } => folder_id(self.folder_id(&mailbox, &path)),
            C::Folders { mailbox } => json(self.folders(&mailbox)?),
            C::Deliver {
                mailbox,
                folder,
                message,
            } => json(self.deliver(&mailbox, &folder, &message)?),
            C::MoveMessage {
                mailbox,
                item_id,
                to,
            } => named("item_id", self.move_message(&mailbox, &item_id, &to)),
            C::SetCategories {
                mailbox,
                item_id,
                categories,
            } => named(
                "change_key",
                self.set_categories(&mailbox, &item_id, &categories),
            ),
            C::MarkRead {
                mailbox,
                item_id,
                read,
            } => json(self.mark_read(&mailbox, &item_id, read)?),
            C::DeleteMessage { mailbox, item_id } => json(self.delete_message(&mailbox, &item_id)?),
            C::Messages { mailbox, folder } => json(self.messages(&mailbox, &folder)?),
            C::Message { mailbox, item_id } => json(self.message(&mailbox, &item_id)?),
            C::FindByInternetMessageId {
                internet_message_id,
            } => json(self.find_by_internet_message_id(&internet_message_id)),
            C::AddFault { rule } => done(|| self.add_fault(rule)),
            C::ClearFaults {} => done(|| self.clear_faults()),
            C::Faults {} => json(self.faults()),
            C::Calls {} => json(self.calls()),
            C::Stats {} => json(self.stats()),
            C::ResetCalls {} => done(|| self.reset_calls()),
            C::SetStyle { style } => done(|| self.set_style(style)),
            C::SetConcurrencyLimit { limit } => done(|| self.set_concurrency_limit(limit)),
            C::SetHangingConnectionLimit { limit } => {
                done(|| self.set_hanging_connection_limit(limit))
            }
            C::SetStreaming { enabled } => done(|| self.set_streaming(enabled)),
            C::ExpireDeltaTokens { mailbox } => json(self.expire_delta_tokens(&mailbox)?),
            C::SetUnreadable { item_id, code } => done(|| self.set_unreadable_as(&item_id, code)),
            C::Subscriptions { mailbox } => json(self.subscriptions(&mailbox)?),
            C::ExpireSubscriptions { mailbox } => json(self.expire_subscriptions(&mailbox)?),
            C::MissEvents { mailbox } => json(self.miss_events(&mailbox)?),
            C::DropStreams {} => done(|| self.drop_streams()),
            C::GraphLifecycle { mailbox, event } => json(self.graph_lifecycle(&mailbox, &event)?),
            C::DropGraphNotifications { mailbox, count } => {
                json(self.drop_graph_notifications(&mailbox, count)?)
            }
            C::SetGraphSubscriptionLifetime { secs } => {
                done(|| self.set_graph_subscription_lifetime(secs))
            }
            C::GraphSubscriptions { mailbox } => json(self.graph_subscriptions(&mailbox)?),
            C::Save {} => json(self.save()?),
        }
    }
}

fn error_body(status: StatusCode, message: String) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

/// `GET|POST /_sim/<command>` with a JSON object body (or none).
pub(crate) async fn http(
    State(shared): State<Arc<Shared>>,
    Path(command): Path<String>,
    body: Bytes,
) -> Response {
    let mut fields: serde_json::Map<String, serde_json::Value> = if body
        .iter()
        .all(u8::is_ascii_whitespace)
    {
        serde_json::Map::new()
    } else {
        match serde_json::from_slice(&body) {
            Ok(m) => m,
            Err(e) => {
                return error_body(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "{command}: the body is not a JSON object ({e}); send {{...}} with the command's fields"
                    ),
                );
            }
        }
    };
    fields.insert("command".into(), serde_json::Value::String(command.clone()));
    let parsed: Command = match serde_json::from_value(serde_json::Value::Object(fields)) {
        Ok(c) => c,
        Err(e) => {
            let status = if e.to_string().contains("unknown variant") {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::BAD_REQUEST
            };
            return error_body(
                status,
                format!("{command}: {e}; see `foldertrack sim --help` for the commands and fields"),
            );
        }
    };
    let control = SimControl { shared };
    match control.run(parsed) {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => error_body(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

/// The control API reference, shown by `foldertrack sim --help` and in docs/simulator.md.
pub const HELP: &str = r#"Control API: POST (or GET) http://HOST:PORT/_sim/<command> with a JSON object of the
command's fields (none: empty body). Answers JSON; errors are HTTP 400 {"error": "..."}, an
unknown command HTTP 404.

Accounts and access
  create_user             {"address", "password"}        a person with a mailbox (Basic auth)
  create_mailbox          {"address"}                    a mailbox reached by impersonation
  create_service_account  {"name", "password"}           an account without a mailbox
  set_password            {"account", "password"}        old password now gets HTTP 401
  grant_impersonation     {"account", "mailbox"}
  revoke_impersonation    {"account", "mailbox"}         then ErrorImpersonateUserDenied
  impersonate_all         {"account", "allowed": bool}
  grant_full_access       {"account", "mailbox"}         open it as a delegate (folders named
                           by DistinguishedFolderId/Mailbox or FolderId); without it: not found
  revoke_full_access      {"account", "mailbox"}
  add_token               {"token", "account"}           accept "Authorization: Bearer <token>"
  revoke_token            {"token"}
  add_oauth_client        {"client_id", "secret", "account"}  the token endpoint
                           POST /<tenant>/oauth2/v2.0/token (client credentials) issues
                           bearer tokens acting as the account
  set_app_roles           {"client_id", "roles": [..]}  the Graph permissions its tokens carry
                           (JWT "roles" claim; default ["Mail.ReadWrite"]); Graph answers
                           403 ErrorAccessDenied to what they do not allow
Folders (paths from the top of the information store, e.g. "Inbox/Customers/Contoso"; a
path starting with "/" starts at the mailbox root, e.g. "/Recoverable Items/Deletions")
  create_folder           {"mailbox", "path"}            creates missing parents -> {"folder_id"}
  rename_folder           {"mailbox", "path", "new_name"}             -> {"folder_id"} (unchanged)
  move_folder             {"mailbox", "path", "new_parent"}           -> {"folder_id"} (unchanged)
  delete_folder           {"mailbox", "path"}            with subfolders and messages
  folder_id               {"mailbox", "path"}            -> {"folder_id"}
  folders                 {"mailbox"}                    -> ["Inbox", "Inbox/Customers", ...]
Messages (as a person would)
  deliver                 {"mailbox", "folder", "message": {"subject", "from", "to": [..],
                           "cc": [..], "body", "body_type", "internet_message_id", "categories",
                           "sent", "received", "has_attachments", "is_read", "size",
                           "attachments": [{"name", "content_type", "content" (base64)}]}}
                                                         -> {"item_id", "internet_message_id"}
  move_message            {"mailbox", "item_id", "to"}   drag to folder "to" -> {"item_id"} (NEW)
  set_categories          {"mailbox", "item_id", "categories": [..]}  -> {"change_key"}
  mark_read               {"mailbox", "item_id", "read": bool}
  delete_message          {"mailbox", "item_id"}
  messages                {"mailbox", "folder"}          -> [message, ...]
  message                 {"mailbox", "item_id"}         -> message
  find_by_internet_message_id {"internet_message_id"}    -> [message, ...] in every mailbox
Faults, log, statistics, style
  add_fault               {"rule": {"mailbox"?, "operation"?, "count"?, "probability"?,
                           "kind": "server_busy_message"|"server_busy_fault" (+"back_off_ms")
                                 | "http503"|"http429" (+"retry_after_secs") | "unauthorized"
                                 | "invalid_sync_state" | "mailbox_move_in_progress"
                                 | "delay" (+"ms") | "drop_connection" | "truncate_body"
                                 | "refuse" (+"code", e.g. "ErrorInvalidServerVersion")}}
  clear_faults  faults  calls  stats  reset_calls  save
  set_style               {"style": {"prefixes": "exchange"|"classic"|"default_namespace"|"unusual",
                           "notification_ns": "messages"|"types", "extra_elements": bool,
                           "omit_includes_last": bool}}
  set_concurrency_limit   {"limit"}                      per account (default 27)
  set_hanging_connection_limit {"limit"}                 open streaming connections per budget: the
                                                         impersonated mailbox, else the account (default 10)
  set_streaming           {"enabled"}                    false: a server without streaming notifications
                                                         (ErrorInvalidServerVersion); pull still works
  expire_delta_tokens     {"mailbox"}                    Graph delta links of the mailbox answer
                                                         410 SyncStateNotFound from now on
  subscriptions           {"mailbox"}                    -> [subscription id, ...] the mailbox's live EWS
                                                         subscriptions (pull and streaming)
  expire_subscriptions    {"mailbox"}                    ends the mailbox's notification subscriptions;
                                                         streams serving them say ErrorSubscriptionNotFound
  miss_events             {"mailbox"}                    loses the events of the mailbox's subscriptions and
                                                         ends them; streams say ErrorMissedNotificationEvents
  drop_streams                                           breaks every open GetStreamingEvents connection
  graph_subscriptions     {"mailbox"}                    -> the live Graph subscriptions on its folders
  graph_lifecycle         {"mailbox", "event"}           sends reauthorizationRequired | subscriptionRemoved
                                                         (which also ends them) | missed for each
  drop_graph_notifications {"mailbox", "count"}          loses its next count change notifications
  set_graph_subscription_lifetime {"secs"?}              grants Graph subscriptions at most secs of
                                                         life (none: what they ask, up to 10,080 min)
  set_unreadable          {"item_id", "code"?}           GetItem answers code (e.g. "ErrorCorruptData")
                                                         for that item alone; without code, readable again

Example:
  curl -s -XPOST $CONTROL/create_user -d '{"address":"alice@example.com","password":"pw"}'
  curl -s -XPOST $CONTROL/create_folder -d '{"mailbox":"alice@example.com","path":"Inbox/Deals"}'
  curl -s -XPOST $CONTROL/deliver -d '{"mailbox":"alice@example.com","folder":"Inbox",
       "message":{"subject":"Quote","from":"Buyer <buyer@contoso.com>","to":["alice@example.com"]}}'
"#;
