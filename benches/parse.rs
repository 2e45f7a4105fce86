//! Decoding speed of the two big EWS responses, in MB/s of XML on one core, next to a plain
//! quick-xml `NsReader` loop over the same bytes (the ceiling: no decoding at all).
//!
//! `cargo bench --bench parse`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use foldertrack::ews::get_item::GetItem;
use foldertrack::ews::sync_folder_items::SyncFolderItems;
use foldertrack::ews::{self, Operation};
use quick_xml::NsReader;
use quick_xml::events::Event;
use std::fmt::Write;
use std::hint::black_box;

const HEAD: &str = r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header><h:ServerVersionInfo MajorVersion="15" MinorVersion="20" MajorBuildNumber="8069" MinorBuildNumber="23" Version="V2018_01_08" xmlns:h="http://schemas.microsoft.com/exchange/services/2006/types"/></s:Header><s:Body xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">"#;
const TAIL: &str = "</s:Body></s:Envelope>";
const NS: &str = r#" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types""#;

fn id(i: usize) -> String {
    format!(
        "AAMkAGI2NGU3NmE5LWY0NDMtNDcxYy04MjE2LTk2OTI3MGU5MmFhMQBGAAAAAAA2p5bX3aCiQ7zJmEABBgAOHh{i:08}AAA="
    )
}

fn message_fields(out: &mut String, i: usize) {
    let _ = write!(
        out,
        r#"<t:ItemId Id="{id}" ChangeKey="CQAAABYAAAD1g6y+MmfYTJZEbLyYn4LlAAA{i:05}"/><t:ParentFolderId Id="AAMkAGI2TG93AAA=" ChangeKey="AQAAAA=="/><t:ItemClass>IPM.Note</t:ItemClass><t:Subject>RE: Quote #{i} for 40 units &amp; delivery terms – Zürich</t:Subject><t:Sensitivity>Normal</t:Sensitivity><t:DateTimeReceived>2026-11-24T09:{m:02}:10Z</t:DateTimeReceived><t:Size>{size}</t:Size><t:Categories><t:String>Customers</t:String></t:Categories><t:Importance>Normal</t:Importance><t:IsSubmitted>false</t:IsSubmitted><t:IsDraft>false</t:IsDraft><t:IsFromMe>false</t:IsFromMe><t:IsResend>false</t:IsResend><t:IsUnmodified>true</t:IsUnmodified><t:DateTimeSent>2026-11-24T09:{m:02}:02Z</t:DateTimeSent><t:DateTimeCreated>2026-11-24T09:{m:02}:10Z</t:DateTimeCreated><t:DisplayCc>Bob Example</t:DisplayCc><t:DisplayTo>Alice Example</t:DisplayTo><t:HasAttachments>false</t:HasAttachments><t:Culture>en-US</t:Culture><t:ConversationId Id="AAQkAGI2NGU3NmE5LWY0NDMtNDcxYy04MjE2LTk2OTI3MGU5MmFhMQAQAK{i:06}="/><t:Sender><t:Mailbox><t:Name>Buyer Contoso</t:Name><t:EmailAddress>buyer@contoso.com</t:EmailAddress><t:RoutingType>SMTP</t:RoutingType><t:MailboxType>OneOff</t:MailboxType></t:Mailbox></t:Sender><t:ToRecipients><t:Mailbox><t:Name>Alice Example</t:Name><t:EmailAddress>alice@example.com</t:EmailAddress><t:RoutingType>SMTP</t:RoutingType><t:MailboxType>Mailbox</t:MailboxType></t:Mailbox></t:ToRecipients><t:CcRecipients><t:Mailbox><t:Name>Bob Example</t:Name><t:EmailAddress>bob@example.com</t:EmailAddress><t:RoutingType>SMTP</t:RoutingType><t:MailboxType>Mailbox</t:MailboxType></t:Mailbox></t:CcRecipients><t:ConversationIndex>AdsJ5m3Q8Fz7n0sR{i:06}</t:ConversationIndex><t:ConversationTopic>Quote #{i} for 40 units &amp; delivery terms</t:ConversationTopic><t:From><t:Mailbox><t:Name>Buyer Contoso</t:Name><t:EmailAddress>buyer@contoso.com</t:EmailAddress><t:RoutingType>SMTP</t:RoutingType><t:MailboxType>OneOff</t:MailboxType></t:Mailbox></t:From><t:InternetMessageId>&lt;quote-{i}.a1b2c3@mail.contoso.com&gt;</t:InternetMessageId><t:IsRead>false</t:IsRead><t:IsResponseRequested>false</t:IsResponseRequested><t:References>&lt;quote-{i}.root@mail.contoso.com&gt;</t:References>"#,
        id = id(i),
        m = i % 60,
        size = 4000 + i,
    );
}

/// A 512-change SyncFolderItems page with full item properties (about 1 MB).
fn sync_page() -> String {
    let mut out = format!(
        "{HEAD}<m:SyncFolderItemsResponse{NS}><m:ResponseMessages><m:SyncFolderItemsResponseMessage ResponseClass=\"Success\"><m:ResponseCode>NoError</m:ResponseCode><m:SyncState>H4sIAAAAAAAEAO29B2AcSZYlJi9tynt/SvVK1+B0ZkLRSIXdMUk=</m:SyncState><m:IncludesLastItemInRange>false</m:IncludesLastItemInRange><m:Changes>"
    );
    for i in 0..512 {
        match i % 16 {
            13 => {
                let _ = write!(
                    out,
                    r#"<t:Delete><t:ItemId Id="{}" ChangeKey="CQAAAA=="/></t:Delete>"#,
                    id(i)
                );
            }
            14 => {
                let _ = write!(
                    out,
                    r#"<t:ReadFlagChange><t:ItemId Id="{}" ChangeKey="CQAAAA=="/><t:IsRead>true</t:IsRead></t:ReadFlagChange>"#,
                    id(i)
                );
            }
            _ => {
                let kind = if i % 16 == 15 { "Update" } else { "Create" };
                let _ = write!(out, "<t:{kind}><t:Message>");
                message_fields(&mut out, i);
                let _ = write!(out, "</t:Message></t:{kind}>");
            }
        }
    }
    out.push_str("</m:Changes></m:SyncFolderItemsResponseMessage></m:ResponseMessages></m:SyncFolderItemsResponse>");
    out.push_str(TAIL);
    out
}

/// A 25-item GetItem batch with realistic HTML bodies (a few KB each, entity-escaped).
fn get_item_batch() -> String {
    let paragraph = "&lt;p style=&quot;font-family:Calibri,sans-serif;font-size:11pt&quot;&gt;Hello Alice,&lt;br&gt;thank you for the quote &amp;amp; the delivery terms. We would like to order 40 units at the price we discussed — delivery to Zürich by the end of the month.&lt;/p&gt;";
    let mut out = format!("{HEAD}<m:GetItemResponse{NS}><m:ResponseMessages>");
    for i in 0..25 {
        out.push_str(r#"<m:GetItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Items><t:Message>"#);
        message_fields(&mut out, i);
        out.push_str(r#"<t:Body BodyType="HTML" IsTruncated="false">&lt;html&gt;&lt;head&gt;&lt;meta http-equiv=&quot;Content-Type&quot; content=&quot;text/html; charset=utf-8&quot;&gt;&lt;/head&gt;&lt;body&gt;"#);
        for _ in 0..12 {
            out.push_str(paragraph);
        }
        out.push_str(
            "&lt;/body&gt;&lt;/html&gt;</t:Body></t:Message></m:Items></m:GetItemResponseMessage>",
        );
    }
    out.push_str("</m:ResponseMessages></m:GetItemResponse>");
    out.push_str(TAIL);
    out
}

/// The ceiling: every event read and namespace-resolved, nothing decoded or kept.
fn plain_reader(xml: &str) -> usize {
    let mut reader = NsReader::from_str(xml);
    let mut events = 0;
    loop {
        match reader.read_resolved_event() {
            Ok((_, Event::Eof)) | Err(_) => return events,
            Ok(_) => events += 1,
        }
    }
}

fn check<O: Operation>(xml: &str) {
    let r = ews::read_response::<O>(xml).expect("the generated page decodes");
    assert!(r.messages.iter().all(Result::is_ok));
}

fn bench(c: &mut Criterion) {
    for (name, xml, decode) in [
        (
            "sync_folder_items_512",
            sync_page(),
            check::<SyncFolderItems> as fn(&str),
        ),
        (
            "get_item_25_html",
            get_item_batch(),
            check::<GetItem> as fn(&str),
        ),
    ] {
        decode(&xml);
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Bytes(xml.len() as u64));
        group.bench_function("plain_nsreader", |b| {
            b.iter(|| plain_reader(black_box(&xml)))
        });
        group.bench_function("full_decode", |b| b.iter(|| decode(black_box(&xml))));
        group.finish();
        println!("{name}: {} bytes", xml.len());
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
